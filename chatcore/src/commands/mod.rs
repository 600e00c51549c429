//! Request handlers, one file per family, as methods of the connection's session.

mod account;
mod directory;
mod messaging;
