//! # chatcore
//!
//! A transport-agnostic secure-messenger engine: accounts with argon2id
//! passwords, session tokens per device, a user directory with live presence,
//! 1:1 messaging with gap-free per-conversation sequence numbers, idempotent
//! sends, offline delivery by per-device cursors, unread counts and alerts.
//!
//! A transport hands [`session::serve`] a stream of decoded
//! [`protocol::ClientFrame`]s and a sink for [`protocol::ServerFrame`]s; the
//! engine does the rest against the backends in a [`server::Backends`].
//!
//! # Layout
//! - [`model`]: ids, messages, profiles, presence.
//! - [`protocol`]: the frames, the MessagePack/JSON codec, error codes.
//! - [`store`]: one trait per backend (users, sessions, reset tokens,
//!   messages, presence, broker, mailer, rate limiter, blobs of media) and
//!   [`store::StoreError`].
//! - [`memory`]: the in-memory reference implementation of every backend.
//! - [`account`]: identifier normalisation, password rules, argon2id hashing.
//! - [`limits`]: connections per address and per account, per node.
//! - [`groups`], [`contacts`]: the rules of groups, and of contacts, blocks
//!   and privacy, as pure functions of stored state.
//! - [`server`]: a node's shared state ([`server::Server`]), [`server::Config`], metrics.
//! - [`session`]: the per-connection loop: sign-in state, subscriptions,
//!   limits, close codes; it applies what requests caused.
//! - [`provision`]: bulk accounts with sessions, for load tests only.
//! - [`request`]: what a request means: [`request::dispatch`] maps a frame
//!   to its handler's future (boxed), which returns the reply and records
//!   events and effects.
//! - `commands`: the request handlers, one file per family (private).
//! - `hub`: node-local fan-out of broker events to connections (private).
//! - [`error`]: [`error::CoreError`] and its mapping to wire errors.
//! - `testkit` (feature `testkit`): the conformance suite every backend runs,
//!   the model-based property tests, and the differential check of the
//!   frame decoders that the tests and the fuzz target share.
//!
//! # Example
//!
//! An in-process server and one client over plain channels:
//!
//! ```
//! use chatcore::protocol::{ClientFrame, ServerFrame};
//! use chatcore::server::{Backends, Config, Server};
//! use chatcore::session::{connect_in_process, PeerInfo};
//! use futures_util::{SinkExt, StreamExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let server = Server::new(Backends::memory(), Config::default()).unwrap();
//! let shutdown = tokio_util::sync::CancellationToken::new();
//! let mut conn = connect_in_process(server, PeerInfo::default(), 16, shutdown);
//!
//! conn.tx.send(Ok(ClientFrame::Hello { id: 1, version: 4, client: None })).await.unwrap();
//! match conn.rx.next().await {
//!     Some(ServerFrame::Welcome { id: 1, version: 4, .. }) => {}
//!     other => panic!("unexpected {other:?}"),
//! }
//! # }
//! ```

pub mod account;
mod commands;
pub mod contacts;
pub mod e2e;
pub mod error;
pub mod groups;
mod hub;
pub mod limits;
pub mod memory;
pub mod model;
pub mod protocol;
pub mod provision;
pub mod request;
pub mod server;
pub mod session;
pub mod store;
#[cfg(feature = "testkit")]
pub mod testkit;

pub use error::CoreError;

/// The maps of the in-memory stores and the hub, keyed by ids that clients
/// choose (user, conversation and client message ids). aHash, keyed per
/// map from the operating system's randomness: designed to resist hash
/// flooding under such keys like std's SipHash, and several times faster
/// on short ids, which a relayed message hashes about ten times (SipHash
/// was a tenth of chatd's instructions per message).
pub(crate) type IdMap<K, V> = std::collections::HashMap<K, V, ahash::RandomState>;
/// The set counterpart of [`IdMap`].
pub(crate) type IdSet<K> = std::collections::HashSet<K, ahash::RandomState>;
pub use server::{Backends, Config, IceConfig, Server, TurnSecret};
