//! The store chosen at start-up.

use anyhow::Context as _;
use chatcore::store::Mailer;
use chatcore::Backends;
use chatcore_mongo::MongoStore;
use std::sync::Arc;

use crate::config::StoreSpec;

/// The database used when the URI names none (`mongodb://host/<db>` names one).
const DEFAULT_DB: &str = "chatcore";

/// The backends `spec` names, with `mailer` for outgoing mail.
pub(crate) async fn backends(
    spec: &StoreSpec,
    mailer: Arc<dyn Mailer>,
) -> anyhow::Result<Backends> {
    let memory = Backends::memory_with_mailer(mailer);
    match spec {
        StoreSpec::Memory => {
            tracing::warn!(
                "using the in-memory store: every account and message lives only as long as this \
                 process (use --store mongodb://... to keep them)"
            );
            Ok(memory)
        }
        StoreSpec::Mongo(uri) => {
            let db = chatcore_mongo::mongodb::options::ClientOptions::parse(&uri.0)
                .await
                .context("invalid MongoDB URI")?
                .default_database
                .unwrap_or_else(|| DEFAULT_DB.to_owned());
            // Fails fast when no server answers within the selection timeout:
            // the indexes must exist before the first write is served.
            let store = MongoStore::connect(&uri.0, &db)
                .await
                .with_context(|| format!("cannot open the MongoDB store (database {db})"))?;
            tracing::info!(
                db,
                "using the MongoDB store: accounts, sessions and history are durable"
            );
            let mut backends = store.backends(memory.clone());
            // Presence says who is connected to this process now: it must not
            // outlive the process (a killed node would leave its users
            // "online" forever). One node keeps it in memory; several nodes
            // need a shared presence store with expiry (see docs/MONGO.md).
            backends.presence = memory.presence;
            Ok(backends)
        }
    }
}
