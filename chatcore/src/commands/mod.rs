//! Request handlers, one file per family, as methods of the connection's session.

pub(crate) mod account;
mod directory;
mod messaging;
