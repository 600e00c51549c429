//! Request handlers, one file per family: plain functions of the server,
//! the caller and the request (see [`crate::request`]).

pub(crate) mod account;
pub(crate) mod backup;
pub(crate) mod contacts;
pub(crate) mod conversations;
pub(crate) mod devices;
pub(crate) mod directory;
pub(crate) mod keys;
pub(crate) mod messaging;
pub(crate) mod requests;
pub(crate) mod to_device;
