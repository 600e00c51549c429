//! The store chosen at start-up.

use chatcore::store::Mailer;
use chatcore::Backends;
use std::sync::Arc;

use crate::config::StoreSpec;

/// The backends `spec` names, with `mailer` for outgoing mail.
pub(crate) async fn backends(
    spec: &StoreSpec,
    mailer: Arc<dyn Mailer>,
) -> anyhow::Result<Backends> {
    match spec {
        StoreSpec::Memory => {
            tracing::warn!(
                "using the in-memory store: every account and message lives only as long as this \
                 process (use --store mongodb://... to keep them)"
            );
            Ok(Backends::memory_with_mailer(mailer))
        }
        StoreSpec::Mongo(_) => anyhow::bail!(
            "the MongoDB store is not built into chatd yet (it arrives with the chatcore-mongo \
             adapter); run with --store memory for now"
        ),
    }
}
