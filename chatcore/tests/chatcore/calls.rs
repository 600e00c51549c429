//! Calls: signalling between a caller and every device of the callee, the
//! first answer taking the call, candidates and sealed signals routed by
//! device, the calls' ends written into the conversation (missed and busy
//! ones alerting), the ring timeout and the grace of a device that went
//! away (on a manual clock), who may call, bounds, and older clients.

use std::sync::Arc;
use std::time::Duration;

use chatcore::model::{CallEnd, CallMedia, Content, ConversationId, DeviceId, UserId};
use chatcore::protocol::{
    CallInfo, CallSignal, CallSignalPush, CallStatus, ClientFrame, ErrorCode, HangupReason,
    IceCandidate, SealedSignal, ServerFrame,
};
use chatcore::server::ManualClock;
use chatcore::testkit::model::fast_config;
use chatcore::{Backends, Config, Server};

use crate::sessions::{code, contacts, Client, PW};

const OFFER: &str =
    "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n";
const ANSWER: &str =
    "v=0\r\no=- 3 4 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n";

fn server_with(config: Config) -> (Arc<Server>, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(chatcore::model::now_millis()));
    let s = Server::with_clock(Backends::memory(), config, clock.clone()).unwrap();
    (s, clock)
}

fn plain_sdp(sdp: &str) -> CallSignal {
    CallSignal {
        sdp: Some(sdp.into()),
        ..CallSignal::default()
    }
}

fn candidates(n: usize) -> CallSignal {
    CallSignal {
        candidates: (0..n)
            .map(|i| IceCandidate {
                candidate: format!("candidate:{i} 1 udp 2122260223 192.0.2.{i} 5{i:04} typ host"),
                sdp_mid: Some("0".into()),
                sdp_m_line_index: Some(0),
            })
            .collect(),
        ..CallSignal::default()
    }
}

fn invite(
    call: &str,
    conv: &ConversationId,
    signal: CallSignal,
) -> impl FnOnce(u32) -> ClientFrame {
    let (call, conv) = (call.to_owned(), conv.clone());
    move |id| ClientFrame::CallInvite {
        id,
        call,
        conv,
        media: CallMedia::Voice,
        signal,
    }
}

fn answer(call: &str, signal: CallSignal) -> impl FnOnce(u32) -> ClientFrame {
    let call = call.to_owned();
    move |id| ClientFrame::CallAnswer { id, call, signal }
}

fn hangup(call: &str, reason: HangupReason) -> impl FnOnce(u32) -> ClientFrame {
    let call = call.to_owned();
    move |id| ClientFrame::CallHangup { id, call, reason }
}

fn state_of(f: &ServerFrame) -> &CallInfo {
    match f {
        ServerFrame::CallState { call, .. } => call,
        other => panic!("not a call_state: {other:?}"),
    }
}

fn states(frames: &[ServerFrame]) -> Vec<(CallStatus, bool, Option<DeviceId>, Option<CallEnd>)> {
    frames
        .iter()
        .filter_map(|f| match f {
            ServerFrame::CallState { call, id: None } => Some((
                call.state,
                call.ringing,
                call.answered_by.clone(),
                call.reason,
            )),
            _ => None,
        })
        .collect()
}

fn signals(frames: &[ServerFrame]) -> Vec<CallSignalPush> {
    frames
        .iter()
        .filter_map(|f| match f {
            ServerFrame::CallSignal(s) => Some(CallSignalPush::clone(s)),
            _ => None,
        })
        .collect()
}

/// The `call` notices among `frames`: (from, outcome, duration), and the alerts.
fn notices(frames: &[ServerFrame]) -> (Vec<(UserId, CallEnd, Option<u64>)>, usize) {
    let mut out = Vec::new();
    let mut alerts = 0;
    for f in frames {
        match f {
            ServerFrame::Message { message } => {
                if let Content::Call {
                    outcome,
                    duration_ms,
                    ..
                } = message.content
                {
                    out.push((message.from.clone(), outcome, duration_ms));
                }
            }
            ServerFrame::Alert { .. } => alerts += 1,
            _ => {}
        }
    }
    (out, alerts)
}

/// Another signed-in device of `user` (a login on its own connection).
async fn second_device(s: &Arc<Server>, name: &str) -> (Client, DeviceId) {
    let mut c = Client::connect(s).await;
    match c.login(name, PW).await {
        ServerFrame::Session { device, .. } => (c, device),
        other => panic!("login: {other:?}"),
    }
}

async fn device_of(c: &mut Client) -> DeviceId {
    match c.req(|id| ClientFrame::Devices { id }).await {
        ServerFrame::DeviceList { devices, .. } => {
            devices
                .into_iter()
                .find(|d| d.current)
                .expect("the asking device")
                .device
        }
        other => panic!("devices: {other:?}"),
    }
}

#[tokio::test]
async fn every_device_of_the_callee_rings_the_first_answer_takes_it_and_the_end_is_written() {
    let (s, clock) = server_with(fast_config());
    let (mut a, mut b1, alice, bob, conv) = contacts(&s).await;
    let (mut a2, _) = second_device(&s, "alice").await;
    let (mut b2, b2_device) = second_device(&s, "bob").await;
    let a_device = device_of(&mut a).await;
    let b1_device = device_of(&mut b1).await;
    for c in [&mut a, &mut a2, &mut b1, &mut b2] {
        c.drain().await;
    }

    let reply = a.req(invite("call-1", &conv, plain_sdp(OFFER))).await;
    let ringing = state_of(&reply);
    assert_eq!(
        (
            ringing.state,
            &ringing.caller,
            &ringing.callee,
            &ringing.caller_device
        ),
        (CallStatus::Ringing, &alice, &bob, &a_device)
    );
    // Both of Bob's devices get the call and its offer; Alice's other device learns of it.
    for b in [&mut b1, &mut b2] {
        let got = b.drain().await;
        assert_eq!(states(&got), [(CallStatus::Ringing, false, None, None)]);
        let sig = signals(&got);
        assert_eq!(sig.len(), 1, "{got:?}");
        assert_eq!(
            (sig[0].sdp.as_deref(), &sig[0].device),
            (Some(OFFER), &a_device)
        );
    }
    assert_eq!(
        states(&a2.drain().await),
        [(CallStatus::Ringing, false, None, None)]
    );
    assert_eq!(states(&a.drain().await), [], "the caller has its reply");

    // One device rings: the caller sees it, once.
    for b in [&mut b1, &mut b2] {
        let r = b
            .req(|id| ClientFrame::CallRinging {
                id,
                call: "call-1".into(),
            })
            .await;
        assert!(matches!(r, ServerFrame::Ok { .. }), "{r:?}");
    }
    assert_eq!(
        states(&a.drain().await),
        [(CallStatus::Ringing, true, None, None)]
    );

    // The caller's candidates before an answer reach every device that rings.
    let r = a
        .req(|id| ClientFrame::CallCandidates {
            id,
            call: "call-1".into(),
            signal: candidates(2),
        })
        .await;
    assert!(matches!(r, ServerFrame::Ok { .. }), "{r:?}");
    assert_eq!(signals(&b1.drain().await)[0].candidates.len(), 2);
    assert_eq!(signals(&b2.drain().await)[0].candidates.len(), 2);

    // Bob's second device answers: the caller gets its answer; the first stops ringing.
    clock.advance(Duration::from_secs(3));
    let active = b2.req(answer("call-1", plain_sdp(ANSWER))).await;
    assert_eq!(state_of(&active).state, CallStatus::Active);
    assert_eq!(state_of(&active).answered_by.as_ref(), Some(&b2_device));
    let got = a.drain().await;
    let sig = signals(&got);
    assert_eq!(
        (sig[0].sdp.as_deref(), &sig[0].device),
        (Some(ANSWER), &b2_device)
    );
    assert_eq!(
        states(&got),
        [(CallStatus::Active, true, Some(b2_device.clone()), None)]
    );
    assert_eq!(
        states(&b1.drain().await),
        [(CallStatus::Active, true, Some(b2_device.clone()), None)],
        "answered on another device"
    );
    let late = b1.req(answer("call-1", plain_sdp(ANSWER))).await;
    assert_eq!(code(&late), Some(ErrorCode::NotFound), "{late:?}");
    // The device that did not answer is not in the call: it cannot signal in it.
    let r = b1
        .req(|id| ClientFrame::CallCandidates {
            id,
            call: "call-1".into(),
            signal: candidates(1),
        })
        .await;
    assert_eq!(code(&r), Some(ErrorCode::Forbidden), "{r:?}");
    // From now on candidates go between the two devices in the call only.
    a.req(|id| ClientFrame::CallCandidates {
        id,
        call: "call-1".into(),
        signal: candidates(1),
    })
    .await;
    assert_eq!(signals(&b2.drain().await).len(), 1);
    assert_eq!(signals(&b1.drain().await).len(), 0);
    b2.req(|id| ClientFrame::CallCandidates {
        id,
        call: "call-1".into(),
        signal: candidates(3),
    })
    .await;
    let to_alice = signals(&a.drain().await);
    assert_eq!((to_alice.len(), to_alice[0].candidates.len()), (1, 3));
    assert_eq!(
        signals(&a2.drain().await).len(),
        0,
        "not the caller's other device"
    );

    // The network path broke: Alice's device restarts ICE with a new offer,
    // Bob's answers it, both between the two devices in the call only.
    let restart = CallSignal {
        sdp: Some("v=0\r\no=- 1 3 IN IP4 127.0.0.1\r\na=ice-ufrag:new\r\n".into()),
        ..candidates(1)
    };
    let r = a
        .req(|id| ClientFrame::CallCandidates {
            id,
            call: "call-1".into(),
            signal: restart.clone(),
        })
        .await;
    assert!(matches!(r, ServerFrame::Ok { .. }), "{r:?}");
    let got = signals(&b2.drain().await);
    assert_eq!(
        (got.len(), got[0].sdp.as_ref(), got[0].candidates.len()),
        (1, restart.sdp.as_ref(), 1)
    );
    assert_eq!(signals(&b1.drain().await).len(), 0);
    let r = b2
        .req(|id| ClientFrame::CallCandidates {
            id,
            call: "call-1".into(),
            signal: plain_sdp(ANSWER),
        })
        .await;
    assert!(matches!(r, ServerFrame::Ok { .. }), "{r:?}");
    let got = signals(&a.drain().await);
    assert_eq!(
        (got.len(), got[0].sdp.as_deref(), &got[0].device),
        (1, Some(ANSWER), &b2_device)
    );
    // Bounded as the first offer was, and never empty.
    let huge = plain_sdp(&"x".repeat(fast_config().max_to_device_bytes + 1));
    for (signal, want) in [
        (huge, ErrorCode::TooLarge),
        (plain_sdp(""), ErrorCode::TooLarge),
        (CallSignal::default(), ErrorCode::InvalidArgument),
    ] {
        let r = a
            .req(|id| ClientFrame::CallCandidates {
                id,
                call: "call-1".into(),
                signal,
            })
            .await;
        assert_eq!(code(&r), Some(want), "{r:?}");
    }

    // A stranger to the call learns nothing of it.
    let mut carol = Client::connect(&s).await;
    carol.register("carol", "+443333333333").await;
    let r = carol.req(hangup("call-1", HangupReason::Hangup)).await;
    assert_eq!(code(&r), Some(ErrorCode::NotFound), "{r:?}");

    // Two minutes later Alice hangs up: both sides learn it, and the call is written.
    clock.advance(Duration::from_secs(120));
    let ended = a.req(hangup("call-1", HangupReason::Hangup)).await;
    assert_eq!(state_of(&ended).reason, Some(CallEnd::Hangup));
    let got = b2.drain().await;
    assert_eq!(
        states(&got),
        [(
            CallStatus::Ended,
            true,
            Some(b2_device.clone()),
            Some(CallEnd::Hangup)
        )]
    );
    let (written, alerts) = notices(&got);
    assert_eq!(written, [(alice.clone(), CallEnd::Hangup, Some(120_000))]);
    assert_eq!(alerts, 0, "an answered call is no alert");
    let (written, _) = notices(&a.drain().await);
    assert_eq!(written.len(), 1, "the caller's device gets the entry too");
    let again = a.req(hangup("call-1", HangupReason::Hangup)).await;
    assert_eq!(code(&again), Some(ErrorCode::NotFound), "over");
    // In the history, seq 2 after the "hello".
    match b1
        .req(|id| ClientFrame::History {
            id,
            conv: conv.clone(),
            before: None,
            limit: None,
        })
        .await
    {
        ServerFrame::Messages { messages, .. } => {
            assert_eq!(messages.len(), 2);
            assert!(matches!(
                messages[1].content,
                Content::Call {
                    outcome: CallEnd::Hangup,
                    duration_ms: Some(120_000),
                    ..
                }
            ));
        }
        other => panic!("{other:?}"),
    }
    let _ = b1_device;
}

#[tokio::test]
async fn declined_busy_and_missed_calls_are_written_and_the_missed_ones_alert() {
    let (s, clock) = server_with(fast_config());
    let (mut a, mut b, alice, bob, conv) = contacts(&s).await;

    // Declined, by the callee before answering.
    a.req(invite("c-declined", &conv, plain_sdp(OFFER))).await;
    b.drain().await;
    let r = b.req(hangup("c-declined", HangupReason::Hangup)).await;
    assert_eq!(state_of(&r).reason, Some(CallEnd::Declined));
    let got = a.drain().await;
    assert_eq!(
        states(&got),
        [(CallStatus::Ended, false, None, Some(CallEnd::Declined))]
    );
    assert_eq!(notices(&got).0, [(alice.clone(), CallEnd::Declined, None)]);
    assert_eq!(
        notices(&b.drain().await).1,
        0,
        "a declined call is no alert"
    );

    // Cancelled, by the caller before an answer.
    a.req(invite("c-cancelled", &conv, plain_sdp(OFFER))).await;
    let r = a.req(hangup("c-cancelled", HangupReason::Hangup)).await;
    assert_eq!(state_of(&r).reason, Some(CallEnd::Cancelled));
    b.drain().await;

    // Busy: Carol calls Bob while Alice's call rings for him.
    let mut c = Client::connect(&s).await;
    let carol = c.register("carol", "+443333333333").await;
    for (x, other) in [(&mut c, &bob), (&mut b, &carol)] {
        let other = other.clone();
        x.req(|id| ClientFrame::Contact {
            id,
            user: other,
            action: chatcore::protocol::ContactAction::Request,
        })
        .await;
    }
    c.send(&bob, "hi", "hi").await;
    let carol_conv = ConversationId::direct(&carol, &bob);
    b.drain().await;
    a.req(invite("c-first", &conv, plain_sdp(OFFER))).await;
    b.drain().await;
    let busy = c.req(invite("c-busy", &carol_conv, plain_sdp(OFFER))).await;
    assert_eq!(
        (state_of(&busy).state, state_of(&busy).reason),
        (CallStatus::Ended, Some(CallEnd::Busy))
    );
    let got = b.drain().await;
    assert_eq!(states(&got), [], "a busy callee is not rung");
    assert_eq!(
        notices(&got),
        (vec![(carol.clone(), CallEnd::Busy, None)], 1)
    );
    // The caller in a call cannot start another.
    let second = a.req(invite("c-again", &conv, plain_sdp(OFFER))).await;
    assert_eq!(code(&second), Some(ErrorCode::LimitReached), "{second:?}");
    // A call id in use is refused.
    let reused = c
        .req(invite("c-first", &carol_conv, plain_sdp(OFFER)))
        .await;
    assert_eq!(code(&reused), Some(ErrorCode::Conflict), "{reused:?}");

    // Missed: nobody answers in the ring timeout (the sweep ends it; not before).
    clock.advance(Duration::from_millis(
        fast_config().call_ring_timeout_ms - 1,
    ));
    assert_eq!(s.sweep_calls().await.unwrap(), 0);
    clock.advance(Duration::from_millis(2));
    assert_eq!(s.sweep_calls().await.unwrap(), 1);
    assert_eq!(s.sweep_calls().await.unwrap(), 0, "once");
    let got = b.drain().await;
    assert_eq!(
        states(&got),
        [(CallStatus::Ended, false, None, Some(CallEnd::Missed))]
    );
    assert_eq!(
        notices(&got),
        (vec![(alice.clone(), CallEnd::Missed, None)], 1)
    );
    assert_eq!(
        states(&a.drain().await),
        [(CallStatus::Ended, false, None, Some(CallEnd::Missed))]
    );
    // Missed and busy calls count as unread for the callee; the others do not.
    match b
        .req(|id| ClientFrame::Conversations {
            id,
            after: None,
            limit: None,
            list: None,
        })
        .await
    {
        ServerFrame::Conversations { conversations, .. } => {
            let with = |c: &ConversationId| {
                conversations
                    .iter()
                    .find(|s| s.conv == *c)
                    .map(|s| s.unread)
                    .unwrap()
            };
            // "hello" (unread for Bob since the test never read it) and the missed call.
            assert_eq!(with(&conv), 2);
            assert_eq!(with(&carol_conv), 2, "hi, and the busy call");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn only_the_two_members_of_an_accepted_direct_conversation_may_call() {
    let (s, _) = server_with(fast_config());
    let (mut a, mut b, alice, bob, conv) = contacts(&s).await;
    let mut c = Client::connect(&s).await;
    let carol = c.register("carol", "+443333333333").await;
    // Not a member: not found, as for a conversation that does not exist.
    let r = c.req(invite("x1", &conv, plain_sdp(OFFER))).await;
    assert_eq!(code(&r), Some(ErrorCode::NotFound), "{r:?}");
    // A message request Bob has not accepted: Carol may not ring him.
    c.send(&bob, "hey", "hey").await;
    let request = ConversationId::direct(&carol, &bob);
    let r = c.req(invite("x2", &request, plain_sdp(OFFER))).await;
    assert_eq!(code(&r), Some(ErrorCode::Forbidden), "{r:?}");
    // Nor may Bob call back without accepting it.
    let r = b.req(invite("x3", &request, plain_sdp(OFFER))).await;
    assert_eq!(code(&r), Some(ErrorCode::Forbidden), "{r:?}");
    // No group calls.
    let group = match a
        .req(|id| ClientFrame::CreateGroup {
            id,
            title: "Tea".into(),
            description: None,
            avatar: None,
            members: vec![bob.clone()],
            encrypted: false,
        })
        .await
    {
        ServerFrame::Conversation { conversation, .. } => conversation.conv,
        other => panic!("{other:?}"),
    };
    let r = a.req(invite("x4", &group, plain_sdp(OFFER))).await;
    assert_eq!(code(&r), Some(ErrorCode::InvalidArgument), "{r:?}");
    // Blocked either way: forbidden, and nothing rings.
    b.req(|id| ClientFrame::Block {
        id,
        user: alice.clone(),
    })
    .await;
    b.drain().await;
    let r = a.req(invite("x5", &conv, plain_sdp(OFFER))).await;
    assert_eq!(code(&r), Some(ErrorCode::Forbidden), "{r:?}");
    let r = b.req(invite("x6", &conv, plain_sdp(OFFER))).await;
    assert_eq!(code(&r), Some(ErrorCode::Forbidden), "{r:?}");
    assert_eq!(states(&b.drain().await), []);
}

#[tokio::test]
async fn encrypted_conversations_take_only_sealed_signals_each_device_its_own() {
    let (s, _) = server_with(fast_config());
    let (mut a, mut b1, _, _, conv) = contacts(&s).await;
    let (mut b2, b2_device) = second_device(&s, "bob").await;
    let b1_device = device_of(&mut b1).await;
    let a_device = device_of(&mut a).await;
    let r = a
        .req(|id| ClientFrame::Encrypt {
            id,
            conv: conv.clone(),
        })
        .await;
    assert!(matches!(r, ServerFrame::Changed { .. }), "{r:?}");
    b1.drain().await;
    b2.drain().await;
    // In the clear, the server could read (and swap) the DTLS fingerprints: refused.
    let r = a.req(invite("e1", &conv, plain_sdp(OFFER))).await;
    assert_eq!(code(&r), Some(ErrorCode::InvalidArgument), "{r:?}");
    let sealed = |pairs: &[(&DeviceId, &str)]| CallSignal {
        sealed: pairs
            .iter()
            .map(|(d, p)| SealedSignal {
                device: (*d).clone(),
                payload: (*p).into(),
            })
            .collect(),
        ..CallSignal::default()
    };
    let both = CallSignal {
        sdp: Some(OFFER.into()),
        ..sealed(&[(&b1_device, "Zm9yIGIx")])
    };
    let r = a.req(invite("e1", &conv, both)).await;
    assert_eq!(
        code(&r),
        Some(ErrorCode::InvalidArgument),
        "plain and sealed: {r:?}"
    );
    let r = a
        .req(invite(
            "e1",
            &conv,
            sealed(&[(&b1_device, "Zm9yIGIx"), (&b2_device, "Zm9yIGIy")]),
        ))
        .await;
    assert_eq!(state_of(&r).state, CallStatus::Ringing);
    let to_b1 = signals(&b1.drain().await);
    let to_b2 = signals(&b2.drain().await);
    assert_eq!(
        (
            to_b1.len(),
            to_b1[0].sealed.as_deref(),
            to_b1[0].sdp.as_deref()
        ),
        (1, Some("Zm9yIGIx"), None)
    );
    assert_eq!(
        (to_b2.len(), to_b2[0].sealed.as_deref()),
        (1, Some("Zm9yIGIy"))
    );
    // The answer is sealed for the caller's device, which gets it alone.
    let r = b2
        .req(answer("e1", sealed(&[(&b1_device, "d3Jvbmc")])))
        .await;
    assert_eq!(code(&r), Some(ErrorCode::InvalidArgument), "{r:?}");
    let r = b2
        .req(answer("e1", sealed(&[(&a_device, "YW5zd2Vy")])))
        .await;
    assert_eq!(state_of(&r).state, CallStatus::Active);
    let to_a = signals(&a.drain().await);
    assert_eq!(
        (to_a[0].sealed.as_deref(), &to_a[0].device),
        (Some("YW5zd2Vy"), &b2_device)
    );
}

/// A device of the callee that connects while the call rings rings too,
/// with the offer as it may read it (sealed: its own payload); once the
/// call is answered, a device that connects gets nothing of it.
#[tokio::test]
async fn a_device_of_the_callee_that_connects_while_it_rings_rings_too() {
    let (s, _) = server_with(fast_config());
    let (mut a, mut b1, _, bob, conv) = contacts(&s).await;
    let (mut b2, b2_device) = second_device(&s, "bob").await;
    let b2_token = b2.token.clone().unwrap();
    let b1_device = device_of(&mut b1).await;
    let a_device = device_of(&mut a).await;
    a.req(|id| ClientFrame::Encrypt {
        id,
        conv: conv.clone(),
    })
    .await;
    // Bob's second device is offline when Alice calls; her client sealed
    // the offer for both of his devices.
    b2.conn.tx.close_channel();
    b2.closed().await;
    b1.drain().await;
    let sealed = CallSignal {
        sealed: vec![
            SealedSignal {
                device: b1_device.clone(),
                payload: "Zm9yIGIx".into(),
            },
            SealedSignal {
                device: b2_device.clone(),
                payload: "Zm9yIGIy".into(),
            },
        ],
        ..CallSignal::default()
    };
    let r = a.req(invite("late1", &conv, sealed)).await;
    assert_eq!(state_of(&r).state, CallStatus::Ringing);
    let resume = |token: String| move |id| ClientFrame::Resume { id, token };
    let mut late = Client::connect(&s).await;
    let r = late.req(resume(b2_token.clone())).await;
    assert!(matches!(r, ServerFrame::Session { .. }), "{r:?}");
    let got = late.drain().await;
    let rung = states(&got);
    assert_eq!(rung.len(), 1, "{got:?}");
    assert_eq!((rung[0].0, rung[0].2.clone()), (CallStatus::Ringing, None));
    let info = got.iter().find_map(|f| match f {
        ServerFrame::CallState { call, .. } => Some(call.clone()),
        _ => None,
    });
    assert_eq!(
        info.map(|i| (i.callee, i.caller_device)),
        Some((bob.clone(), a_device.clone()))
    );
    let offer = signals(&got);
    assert_eq!(
        (
            offer.len(),
            offer[0].call.as_str(),
            offer[0].sealed.as_deref(),
            &offer[0].device
        ),
        (1, "late1", Some("Zm9yIGIy"), &a_device),
        "its own sealed payload, from the caller's device"
    );
    // It answers, as a device rung at the invite would.
    let r = late
        .req(answer(
            "late1",
            CallSignal {
                sealed: vec![SealedSignal {
                    device: a_device.clone(),
                    payload: "YW5zd2Vy".into(),
                }],
                ..CallSignal::default()
            },
        ))
        .await;
    assert_eq!(state_of(&r).state, CallStatus::Active, "{r:?}");
    // Answered: another connection of Bob's gets no ringing call.
    let mut after = Client::connect(&s).await;
    after.req(resume(b2_token)).await;
    let got = after.drain().await;
    assert!(
        states(&got).is_empty() && signals(&got).is_empty(),
        "{got:?}"
    );
}

/// A plain offer reaches a device that connects while the call rings as
/// it is.
#[tokio::test]
async fn a_plain_offer_reaches_a_device_that_connects_while_it_rings() {
    let (s, _) = server_with(fast_config());
    let (mut a, _b1, _, _, conv) = contacts(&s).await;
    let (mut b2, _) = second_device(&s, "bob").await;
    let token = b2.token.clone().unwrap();
    b2.conn.tx.close_channel();
    b2.closed().await;
    a.req(invite("late2", &conv, plain_sdp(OFFER))).await;
    let mut late = Client::connect(&s).await;
    late.req(|id| ClientFrame::Resume { id, token }).await;
    let got = late.drain().await;
    assert_eq!(states(&got).len(), 1, "{got:?}");
    assert_eq!(signals(&got)[0].sdp.as_deref(), Some(OFFER));
}

#[tokio::test]
async fn a_device_gone_past_the_grace_ends_the_call_and_one_back_in_time_keeps_it() {
    let (s, clock) = server_with(fast_config());
    let (mut a, b, _, _, conv) = contacts(&s).await;
    let token = b.token.clone().unwrap();
    let mut b = b;
    a.req(invite("g1", &conv, plain_sdp(OFFER))).await;
    let r_answer = b.req(answer("g1", plain_sdp(ANSWER))).await;
    assert_eq!(state_of(&r_answer).state, CallStatus::Active);
    a.drain().await;
    let grace = Duration::from_millis(fast_config().call_grace_ms);

    // Bob's connection drops, and his device resumes within the grace period.
    b.conn.tx.close_channel();
    b.closed().await;
    clock.advance(grace / 2);
    let mut back = Client::connect(&s).await;
    let r = back
        .req(|id| ClientFrame::Resume {
            id,
            token: token.clone(),
        })
        .await;
    assert!(matches!(r, ServerFrame::Session { .. }), "{r:?}");
    // It is told where its call stands: a client that lost the call (a
    // reloaded page) hangs it up, one that has it carries on.
    let b_device = state_of(&r_answer).answered_by.clone();
    assert_eq!(
        states(&back.drain().await),
        [(CallStatus::Active, false, b_device, None)]
    );
    clock.advance(grace);
    assert_eq!(s.sweep_calls().await.unwrap(), 0, "the device came back");
    // Another connection of the same device coming and going does not touch the call.
    let mut other = Client::connect(&s).await;
    other
        .req(|id| ClientFrame::Resume {
            id,
            token: token.clone(),
        })
        .await;
    assert_eq!(
        states(&other.drain().await),
        [],
        "the call is on another connection of the device: nothing to tell"
    );
    other.conn.tx.close_channel();
    other.closed().await;
    clock.advance(grace * 2);
    assert_eq!(s.sweep_calls().await.unwrap(), 0);
    // The connection holding the call goes for good: after the grace, the call is over.
    back.conn.tx.close_channel();
    back.closed().await;
    clock.advance(grace - Duration::from_millis(1));
    assert_eq!(s.sweep_calls().await.unwrap(), 0);
    clock.advance(Duration::from_millis(2));
    assert_eq!(s.sweep_calls().await.unwrap(), 1);
    let got = a.drain().await;
    assert_eq!(
        states(&got).last().map(|s| s.3),
        Some(Some(CallEnd::Gone)),
        "{got:?}"
    );
    // The caller is free again.
    let r = a.req(invite("g2", &conv, plain_sdp(OFFER))).await;
    assert_eq!(state_of(&r).state, CallStatus::Ringing);
}

#[tokio::test]
async fn bad_signals_get_clear_errors_and_a_flood_of_invites_is_limited() {
    let mut config = fast_config();
    config.call_invites.max = 3;
    let (s, _) = server_with(config);
    let (mut a, mut b, _, _, conv) = contacts(&s).await;
    let check = |r: &ServerFrame, want: ErrorCode| assert_eq!(code(r), Some(want), "{r:?}");
    check(
        &a.req(invite("b1", &conv, CallSignal::default())).await,
        ErrorCode::InvalidArgument,
    );
    let huge = "x".repeat(fast_config().max_to_device_bytes + 1);
    check(
        &a.req(invite("b1", &conv, plain_sdp(&huge))).await,
        ErrorCode::TooLarge,
    );
    check(
        &a.req(invite(&"c".repeat(200), &conv, plain_sdp(OFFER)))
            .await,
        ErrorCode::InvalidArgument,
    );
    // Invalid requests spent nothing: three invites pass, the fourth is limited.
    for i in 0..3 {
        let call = format!("flood-{i}");
        let r = a.req(invite(&call, &conv, plain_sdp(OFFER))).await;
        assert_eq!(state_of(&r).state, CallStatus::Ringing, "{r:?}");
        // Candidates are bounded too.
        let r = a
            .req(|id| ClientFrame::CallCandidates {
                id,
                call: call.clone(),
                signal: candidates(51),
            })
            .await;
        check(&r, ErrorCode::TooLarge);
        let r = a
            .req(|id| ClientFrame::CallCandidates {
                id,
                call: call.clone(),
                signal: plain_sdp(OFFER),
            })
            .await;
        check(&r, ErrorCode::InvalidArgument);
        a.req(hangup(&call, HangupReason::Hangup)).await;
    }
    check(
        &a.req(invite("flood-3", &conv, plain_sdp(OFFER))).await,
        ErrorCode::RateLimited,
    );
    b.drain().await;
}

#[tokio::test]
async fn an_older_client_gets_no_call_pushes_and_reads_the_notice_as_text() {
    let (s, clock) = server_with(fast_config());
    let (mut a, _b, _, _, conv) = contacts(&s).await;
    let mut old = Client::connect_version(&s, 8).await;
    match old.login("bob", PW).await {
        ServerFrame::Session { .. } => {}
        other => panic!("{other:?}"),
    }
    old.drain().await;
    a.req(invite("o1", &conv, plain_sdp(OFFER))).await;
    clock.advance(Duration::from_millis(
        fast_config().call_ring_timeout_ms + 1,
    ));
    assert_eq!(s.sweep_calls().await.unwrap(), 1);
    let got = old.drain().await;
    assert_eq!((states(&got), signals(&got).len()), (vec![], 0), "{got:?}");
    let texts: Vec<String> = got
        .iter()
        .filter_map(|f| match f {
            ServerFrame::Message { message } => match &message.content {
                Content::Text { text } => Some(text.clone()),
                other => panic!("a version-8 client got {other:?}"),
            },
            _ => None,
        })
        .collect();
    assert_eq!(texts, ["📞 Missed voice call"]);
}
