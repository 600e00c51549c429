//! Media storage on this machine: the filesystem blob store. (The HTTP
//! endpoints that upload and serve media come later.)

mod fs;

pub(crate) use fs::FsBlobStore;
