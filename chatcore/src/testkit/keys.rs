//! Model-based property test of the key directory: random uploads,
//! fallback keys, device removals and batches of concurrent claims run
//! against a [`KeyStore`] from a [`Factory`], checked against a model:
//!
//! - no one-time key is ever handed out twice, and none is lost: every key
//!   uploaded is either claimed once or still counted;
//! - a batch of concurrent claims for a device gets as many one-time keys
//!   as it has (or as many as asked), and the rest its fallback key, if any;
//! - the counts a device reads are the model's.

use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::{check_scenarios, ensure, Check, Factory};
use crate::model::{DeviceId, UserId};
use crate::store::{KeyStore, OneTimeKey};

const DEVICES: usize = 3;

/// One step.
#[derive(Clone, Debug)]
pub enum Op {
    /// A device uploads `n` new one-time keys (at most 8 kept).
    Upload {
        /// Device.
        device: usize,
        /// How many.
        n: usize,
    },
    /// A device sets a new fallback key.
    Fallback {
        /// Device.
        device: usize,
    },
    /// Concurrent claims, each for the devices listed.
    Claims {
        /// Each claim's targets.
        batches: Vec<Vec<usize>>,
    },
    /// A device is removed (revoked).
    Remove {
        /// Device.
        device: usize,
    },
}

const MAX: usize = 8;

fn op() -> impl Strategy<Value = Op> {
    let d = 0..DEVICES;
    prop_oneof![
        3 => (d.clone(), 0..6usize).prop_map(|(device, n)| Op::Upload { device, n }),
        1 => d.clone().prop_map(|device| Op::Fallback { device }),
        4 => proptest::collection::vec(proptest::collection::vec(d.clone(), 1..4), 1..6)
            .prop_map(|batches| Op::Claims { batches }),
        1 => d.prop_map(|device| Op::Remove { device }),
    ]
}

/// Runs `cases` random scenarios against fresh backends from `factory`.
pub fn check(factory: Arc<dyn Factory>, cases: u32) {
    check_scenarios(
        "key directory model check",
        cases,
        proptest::collection::vec(op(), 1..40),
        |ops| run(factory.clone(), ops),
    );
}

#[derive(Default)]
struct Device {
    /// Keys uploaded and not claimed.
    left: BTreeSet<String>,
    /// The fallback key's id, and whether it was handed out.
    fallback: Option<(String, bool)>,
}

async fn run(factory: Arc<dyn Factory>, ops: Vec<Op>) -> Check<()> {
    let store: Arc<dyn KeyStore> = factory.backends().await.keys;
    let user = UserId::generate();
    let ids: Vec<DeviceId> = (0..DEVICES)
        .map(|i| DeviceId::from(format!("dev{i}").as_str()))
        .collect();
    let mut model: Vec<Device> = (0..DEVICES).map(|_| Device::default()).collect();
    // Every key id ever handed out as a one-time key.
    let mut handed: BTreeSet<String> = BTreeSet::new();
    let mut next = 0usize;
    for op in ops {
        match op {
            Op::Upload { device, n } => {
                let keys: Vec<OneTimeKey> = (0..n)
                    .map(|i| {
                        let id = format!("k{}", next + i);
                        OneTimeKey::new(id.clone(), format!("pub-{id}"), "sig")
                    })
                    .collect();
                next += n;
                let fits = model[device].left.len() + n <= MAX;
                let stored = store
                    .add_one_time_keys(&user, &ids[device], &keys, MAX)
                    .await
                    .map_err(|e| e.to_string())?;
                ensure(stored == fits, || {
                    format!(
                        "upload of {n} to {}: stored {stored}, fits {fits}",
                        model[device].left.len()
                    )
                })?;
                if fits {
                    model[device].left.extend(keys.into_iter().map(|k| k.id));
                }
            }
            Op::Fallback { device } => {
                let id = format!("f{next}");
                next += 1;
                let key = OneTimeKey::new(id.clone(), format!("pub-{id}"), "sig");
                store
                    .set_fallback(&user, &ids[device], &key)
                    .await
                    .map_err(|e| e.to_string())?;
                model[device].fallback = Some((id, false));
            }
            Op::Remove { device } => {
                store
                    .remove_device(&user, &ids[device])
                    .await
                    .map_err(|e| e.to_string())?;
                model[device] = Device::default();
            }
            Op::Claims { batches } => {
                let claims = batches.iter().map(|targets| {
                    let store = store.clone();
                    let t: Vec<(UserId, DeviceId)> = targets
                        .iter()
                        .map(|&d| (user.clone(), ids[d].clone()))
                        .collect();
                    async move { store.claim(&t).await }
                });
                let results = futures_util::future::join_all(claims).await;
                let mut asked: BTreeMap<usize, usize> = BTreeMap::new();
                for t in batches.iter().flatten() {
                    *asked.entry(*t).or_default() += 1;
                }
                let mut got_one_time: BTreeMap<usize, usize> = BTreeMap::new();
                let mut got_fallback: BTreeMap<usize, usize> = BTreeMap::new();
                for r in results {
                    for c in r.map_err(|e| e.to_string())? {
                        let d = ids
                            .iter()
                            .position(|x| *x == c.device)
                            .ok_or("a claim for a device never named")?;
                        if c.fallback {
                            let expected = model[d].fallback.as_ref().map(|f| &f.0);
                            ensure(expected == Some(&c.key.id), || {
                                format!(
                                    "fallback {} of device {d}, expected {expected:?}",
                                    c.key.id
                                )
                            })?;
                            *got_fallback.entry(d).or_default() += 1;
                        } else {
                            ensure(handed.insert(c.key.id.clone()), || {
                                format!("one-time key {} handed out twice", c.key.id)
                            })?;
                            ensure(model[d].left.remove(&c.key.id), || {
                                format!("key {} was not device {d}'s to hand out", c.key.id)
                            })?;
                            *got_one_time.entry(d).or_default() += 1;
                        }
                    }
                }
                for (d, n) in asked {
                    let one = got_one_time.get(&d).copied().unwrap_or(0);
                    let fb = got_fallback.get(&d).copied().unwrap_or(0);
                    let had = one + model[d].left.len();
                    let want_one = n.min(had);
                    let want_fb = if model[d].fallback.is_some() {
                        n - want_one
                    } else {
                        0
                    };
                    ensure(one == want_one && fb == want_fb, || {
                        format!("device {d} asked {n} times with {had} keys: {one} one-time, {fb} fallback")
                    })?;
                    if fb > 0 {
                        if let Some(f) = &mut model[d].fallback {
                            f.1 = true;
                        }
                    }
                }
            }
        }
        for (d, id) in ids.iter().enumerate() {
            let counts = store.counts(&user, id).await.map_err(|e| e.to_string())?;
            let unused = model[d].fallback.as_ref().is_some_and(|f| !f.1);
            ensure(
                counts.one_time == model[d].left.len() && counts.fallback_unused == unused,
                || {
                    format!(
                        "device {d} counts {counts:?}, model {} and {unused}",
                        model[d].left.len()
                    )
                },
            )?;
        }
    }
    Ok(())
}
