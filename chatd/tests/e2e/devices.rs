//! Devices through chatcore-client against the real chatd: the list,
//! renaming, revoking another device (it closes with 4001 and its token no
//! longer resumes) and one's own (a logout), `devices_changed` pushes, and
//! another user's device out of reach.

use super::*;
use chatcore_client::chatcore::model::DeviceId;

/// The devices named in `devices_changed` pushes received so far.
async fn changed(user: &mut User) -> Vec<UserId> {
    drain(user)
        .await
        .into_iter()
        .filter_map(|f| match f {
            ServerFrame::DevicesChanged { user } => Some(user),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn devices_are_listed_renamed_and_revoked_through_the_client() {
    let chatd = Chatd::start(&[]).await;
    let mut alice = chatd.user("alice").await;
    let mut bob = chatd.user("bob").await;
    bob.client
        .create_group("Tea", None, &[alice.id()])
        .await
        .expect("group");
    let (phone, mut phone_events) = chatd.connect().await;
    let phone_session = phone.login("alice", PASSWORD, "Phone").await.unwrap();
    assert_eq!(changed(&mut alice).await, vec![alice.id()], "own: sign-in");
    assert!(
        changed(&mut bob).await.is_empty(),
        "others: not before keys"
    );

    let listed = alice.client.devices().await.expect("devices");
    let summary: Vec<(DeviceId, &str, bool, bool)> = listed
        .iter()
        .map(|d| (d.device.clone(), d.name.as_str(), d.keys, d.current))
        .collect();
    assert_eq!(
        summary,
        vec![
            (alice.session.device.clone(), "e2e", false, true),
            (phone_session.device.clone(), "Phone", false, false),
        ]
    );
    assert!(listed[0].created_at <= listed[1].created_at);
    assert!(listed.iter().all(|d| d.last_active >= d.created_at));

    alice
        .client
        .rename_device(&phone_session.device, "Work phone")
        .await
        .expect("rename");
    let names: Vec<String> = phone
        .devices()
        .await
        .expect("devices")
        .into_iter()
        .map(|d| d.name)
        .collect();
    assert_eq!(names, vec!["e2e", "Work phone"]);

    // Bob can neither rename nor revoke Alice's devices.
    let theirs = bob
        .client
        .rename_device(&phone_session.device, "Mine")
        .await;
    assert_eq!(server_code(theirs), ErrorCode::NotFound);
    let theirs = bob.client.revoke_device(&phone_session.device).await;
    assert_eq!(server_code(theirs), ErrorCode::NotFound);
    let bad = alice
        .client
        .revoke_device(&DeviceId::from("no such/device"))
        .await;
    assert_eq!(server_code(bad), ErrorCode::InvalidArgument);

    // Alice revokes the phone from her laptop: it closes with 4001, its
    // token no longer resumes, and Bob (who shares a group) is told.
    drain(&mut bob).await;
    alice
        .client
        .revoke_device(&phone_session.device)
        .await
        .expect("revoke");
    assert_eq!(closed(&mut phone_events).await.code, 4001);
    let (again, _again_events) = chatd.connect().await;
    let token = phone_session.token.clone().expect("a token");
    assert_eq!(
        server_code(again.resume(&token).await),
        ErrorCode::Unauthenticated
    );
    assert_eq!(
        changed(&mut bob).await,
        vec![alice.id()],
        "partner: revoked"
    );
    assert_eq!(alice.client.devices().await.expect("devices").len(), 1);

    // Revoking one's own device is a logout.
    let own = alice.session.device.clone();
    alice.client.revoke_device(&own).await.expect("logout");
    assert_eq!(closed(&mut alice.events).await.code, 1000);
    assert_eq!(changed(&mut bob).await, vec![alice.id()], "partner: logout");
}
