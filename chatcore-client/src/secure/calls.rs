//! Sealed call signals (docs/E2E.md, "A sealed call signal"): in an
//! end-to-end encrypted conversation chatd takes only call signals sealed
//! for each device they go to, so that it can neither read nor swap the
//! DTLS fingerprints in the SDP. [`SecureClient::seal_call_signal`] makes
//! them for `call_invite`, `call_answer` and `call_candidates`;
//! [`SecureClient::open_call_signal`] opens a `call_signal` push's.
//!
//! A sealed signal is, for each target device, one `olm.v1` to-device
//! payload whose Olm plaintext is `custom {kind: "call.signal", data}`,
//! `data` the UTF-8 JSON `{"call": "<id>", "sdp": "..."}` or `{"call":
//! "<id>", "candidates": [...]}`: the same bytes as the TypeScript
//! binding's `SecureChat.sealSignal` / `openSignal`, so either side may
//! call the other.

use chatcore::e2e::{decode_payload, encode_payload, OLM_V1};
use chatcore::model::{ConversationId, DeviceId, UserId};
use chatcore::protocol::{CallSignal, CallSignalPush, DeviceRef, IceCandidate, SealedSignal};
use serde::{Deserialize, Serialize};

use super::{lock, now, SecureClient, SecureError, MAX_PAYLOAD, PER_REQUEST};
use crate::e2e::{self, DeviceTrust, Outcome, Received};

/// The `custom` kind of a sealed call signal's Olm plaintext.
pub const CALL_SIGNAL_KIND: &str = "call.signal";

/// Devices one sealed signal may address (the server's bound).
const MAX_SEALED: usize = 32;
/// Candidates one signal may carry (the server's bound).
const MAX_CANDIDATES: usize = 50;

/// The JSON inside a sealed signal: what a plain signal would carry, and
/// the call it belongs to (so that the server cannot replay it in another
/// call). Unknown fields are ignored, as the TypeScript binding does.
#[derive(Serialize, Deserialize)]
struct SealedBody {
    call: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sdp: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    candidates: Vec<IceCandidate>,
}

impl SecureClient {
    /// Seals the plain signal `plain` (its `sdp`, or its `candidates`) of
    /// call `call` in the encrypted conversation `conv` for `devices` of
    /// `peer`, or for every device of theirs when `None` (their keys are
    /// then queried through `conv` first; a listed device that is not
    /// known yet is queried too). Returns a [`CallSignal`] with only
    /// `sealed`, one payload per device, for
    /// [`crate::Client::call_invite`], [`crate::Client::call_answer`] or
    /// [`crate::Client::call_candidates`] of that same call.
    ///
    /// Olm channels are made as for sharing conversation keys: a device
    /// without one gets one of its one-time keys claimed (through `conv`).
    /// A device that cannot be reached that way (no keys published, no
    /// one-time key left, a bad signature) is left out and logged.
    ///
    /// Errors: [`SecureError::Refused`] when `plain` is already sealed,
    /// carries neither an SDP nor candidates, or more than the server
    /// takes (50 candidates, 32 devices), and when no device of `peer`
    /// is left to seal for; [`SecureError::Client`] when a key query or
    /// claim fails; [`SecureError::Store`] when the state cannot be saved
    /// (nothing sealed then leaves the device).
    pub async fn seal_call_signal(
        &self,
        call: &str,
        conv: &ConversationId,
        peer: &UserId,
        devices: Option<&[DeviceId]>,
        plain: &CallSignal,
    ) -> Result<CallSignal, SecureError> {
        if !plain.sealed.is_empty() {
            return Err(SecureError::Refused(
                "the signal to seal is already sealed".into(),
            ));
        }
        if plain.sdp.is_none() && plain.candidates.is_empty() {
            return Err(SecureError::Refused(
                "a call signal carries an sdp or candidates".into(),
            ));
        }
        if plain.candidates.len() > MAX_CANDIDATES {
            return Err(SecureError::Refused(format!(
                "a call signal carries at most {MAX_CANDIDATES} candidates"
            )));
        }
        if devices.is_some_and(|d| d.len() > MAX_SEALED) {
            return Err(SecureError::Refused(format!(
                "a call signal is sealed for at most {MAX_SEALED} devices"
            )));
        }
        let data = serde_json::to_vec(&SealedBody {
            call: call.to_owned(),
            sdp: plain.sdp.clone(),
            candidates: plain.candidates.clone(),
        })
        .map_err(|e| SecureError::Refused(format!("the signal cannot be encoded: {e}")))?;

        let _op = self.shared.op.lock().await;
        let users = std::slice::from_ref(peer);
        let targets: Vec<DeviceRef> = match devices {
            None => {
                self.refresh_keys(users, Some(conv)).await?;
                let mut all = lock(&self.shared.machine).devices_of(users);
                if all.len() > MAX_SEALED {
                    tracing::warn!(user = %peer, devices = all.len(),
                        "a call signal is sealed for the first {MAX_SEALED} devices only");
                    all.truncate(MAX_SEALED);
                }
                all
            }
            Some(listed) => {
                let unknown = {
                    let m = lock(&self.shared.machine);
                    listed
                        .iter()
                        .any(|d| m.device_trust(peer, d) == DeviceTrust::Unknown)
                };
                if unknown {
                    self.refresh_keys(users, Some(conv)).await?;
                }
                let m = lock(&self.shared.machine);
                listed
                    .iter()
                    .filter(|d| m.device_trust(peer, d) != DeviceTrust::Unknown)
                    .map(|d| DeviceRef {
                        user: peer.clone(),
                        device: d.clone(),
                    })
                    .collect()
            }
        };

        // One-time keys for the devices without an Olm session; a device
        // whose claim fails is left out below.
        let needs = lock(&self.shared.machine).needs_claims(&targets, now());
        if !needs.is_empty() {
            let mut claimed = Vec::new();
            for chunk in needs.chunks(PER_REQUEST) {
                claimed.extend(self.shared.client.claim_keys(chunk, Some(conv)).await?);
            }
            let saved = {
                let mut m = lock(&self.shared.machine);
                for (device, why) in m.receive_claimed_keys(&needs, &claimed, now()) {
                    tracing::warn!(user = %device.user, device = %device.device, error = %why,
                        "no encrypted channel to a device: the call signal leaves it out");
                }
                self.persist(&m)?
            };
            saved.done().await?;
        }

        let (sealed, saved) = {
            let mut m = lock(&self.shared.machine);
            let mut sealed = Vec::new();
            for target in &targets {
                match m.encrypt_to_device(target, CALL_SIGNAL_KIND, &data, now()) {
                    Ok(Outcome::Ready(out)) => sealed.push(SealedSignal {
                        device: target.device.clone(),
                        payload: encode_payload(&out.payload),
                    }),
                    Ok(Outcome::NeedsClaims(_)) => {}
                    Err(e) => tracing::warn!(user = %target.user, device = %target.device,
                        error = %e, "a call signal was not sealed for a device"),
                }
            }
            (sealed, self.persist(&m)?)
        };
        // The ratchet steps are saved before the ciphertexts leave: one
        // must never be used twice.
        saved.done().await?;
        if sealed.is_empty() {
            return Err(SecureError::Refused(format!(
                "no device of {peer} can be reached over an encrypted channel"
            )));
        }
        Ok(CallSignal {
            sealed,
            ..CallSignal::default()
        })
    }

    /// Opens the sealed signal of a `call_signal` push that `peer` (the
    /// call's other side) sent from the push's `device`, and returns it
    /// plain: its `sdp`, or its `candidates`, with no `sealed`. The
    /// sender's keys are queried first when that device is not known.
    ///
    /// Errors: [`SecureError::Refused`] when the push is not sealed, when
    /// the plaintext is not a call signal (another `custom` kind, or a
    /// conversation key), not the documented JSON, or of another call than
    /// `push.call` (a signal replayed by the server into another call);
    /// [`e2e::E2eError::UnknownDevice`] when the sending device published
    /// no keys; another [`SecureError::E2e`] when the payload is malformed
    /// or does not decrypt; [`SecureError::Client`] when the key query
    /// fails.
    pub async fn open_call_signal(
        &self,
        peer: &UserId,
        push: &CallSignalPush,
    ) -> Result<CallSignal, SecureError> {
        let Some(sealed) = &push.sealed else {
            return Err(SecureError::Refused(format!(
                "the signal of call {} is not sealed",
                push.call
            )));
        };
        // Base64 of at most MAX_PAYLOAD bytes: refused before decoding.
        if sealed.len() > MAX_PAYLOAD.div_ceil(3) * 4 {
            return Err(e2e::E2eError::Malformed("a sealed signal is too large".into()).into());
        }
        let payload = decode_payload(sealed, MAX_PAYLOAD)
            .map_err(|e| e2e::E2eError::Malformed(format!("a sealed signal: {e}")))?;

        let _op = self.shared.op.lock().await;
        let known = |s: &Self| {
            lock(&s.shared.machine).device_trust(peer, &push.device) != DeviceTrust::Unknown
        };
        if !known(self) {
            self.refresh_keys(std::slice::from_ref(peer), None).await?;
            if !known(self) {
                return Err(e2e::E2eError::UnknownDevice {
                    user: peer.clone(),
                    device: push.device.clone(),
                }
                .into());
            }
        }
        let incoming = e2e::ToDeviceIn {
            from_user: peer.clone(),
            from_device: push.device.clone(),
            kind: OLM_V1.to_owned(),
            // An id of its own: a sealed signal never comes through the
            // to-device queue, so it can be no redelivery of one.
            id: format!("call-signal:{}", uuid::Uuid::new_v4()),
            payload,
            ts: now(),
        };
        let (received, saved) = {
            let mut m = lock(&self.shared.machine);
            let r = m.receive_to_device(&incoming, now());
            (r, self.persist(&m)?)
        };
        saved.done().await?;
        let data = match received? {
            Received::Custom { kind, data, .. } if kind == CALL_SIGNAL_KIND => data,
            Received::Custom { kind, .. } => {
                return Err(SecureError::Refused(format!(
                    "the sealed payload is a {kind:?}, not a call signal"
                )))
            }
            _ => {
                return Err(SecureError::Refused(
                    "the sealed payload is not a call signal".into(),
                ))
            }
        };
        let body: SealedBody = serde_json::from_slice(&data).map_err(|e| {
            SecureError::Refused(format!("the sealed call signal is malformed: {e}"))
        })?;
        if body.call != push.call {
            return Err(SecureError::Refused(format!(
                "the sealed signal is of another call than {}",
                push.call
            )));
        }
        if body.candidates.len() > MAX_CANDIDATES {
            return Err(SecureError::Refused(format!(
                "a call signal carries at most {MAX_CANDIDATES} candidates"
            )));
        }
        Ok(CallSignal {
            sdp: body.sdp,
            candidates: body.candidates,
            sealed: Vec::new(),
        })
    }
}
