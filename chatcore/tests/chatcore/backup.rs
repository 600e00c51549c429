//! Key backups through whole sessions: one current backup per user that
//! only that user's devices reach, versions that go stale when another
//! device makes a new backup, keys checked before anything is stored,
//! bounded, and paged in order.

use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine;
use chatcore::model::ConversationId;
use chatcore::protocol::{
    BackupInfo, BackupKeyInfo, BackupKeyRef, ClientFrame, ErrorCode, ServerFrame,
};
use chatcore::testkit::model::fast_config;
use chatcore::{Backends, Config, Server};
use std::sync::Arc;

use super::sessions::{code, two_users, Client};

fn key(conv: &str, session: &str, first_index: u32, data: &[u8]) -> BackupKeyInfo {
    BackupKeyInfo {
        conv: ConversationId::from(conv),
        session: session.into(),
        first_index,
        forwarded: 0,
        verified: false,
        data: STANDARD_NO_PAD.encode(data),
    }
}

async fn create(c: &mut Client, auth_data: &str) -> BackupInfo {
    let auth_data = auth_data.to_owned();
    match c
        .req(|id| ClientFrame::CreateBackup {
            id,
            algorithm: "chatcore.backup.v1".into(),
            auth_data,
        })
        .await
    {
        ServerFrame::Backup { backup, .. } => backup,
        other => panic!("create_backup: {other:?}"),
    }
}

async fn put(c: &mut Client, version: &str, keys: Vec<BackupKeyInfo>) -> ServerFrame {
    let version = version.to_owned();
    c.req(|id| ClientFrame::PutBackupKeys { id, version, keys })
        .await
}

async fn page(
    c: &mut Client,
    version: &str,
    after: Option<&BackupKeyInfo>,
    limit: Option<u32>,
) -> (Vec<BackupKeyInfo>, bool) {
    let version = version.to_owned();
    let after = after.map(|k| BackupKeyRef {
        conv: k.conv.clone(),
        session: k.session.clone(),
    });
    match c
        .req(|id| ClientFrame::GetBackupKeys {
            id,
            version,
            after,
            limit,
        })
        .await
    {
        ServerFrame::BackupKeys { keys, more, .. } => (keys, more),
        other => panic!("get_backup_keys: {other:?}"),
    }
}

fn server(config: Config) -> Arc<Server> {
    Server::new(Backends::memory(), config).unwrap()
}

#[tokio::test]
async fn a_backup_is_its_users_alone_and_a_new_one_makes_the_old_version_stale() {
    let s = server(fast_config());
    let (mut a, mut b, _, _) = two_users(&s).await;
    assert_eq!(
        code(&a.req(|id| ClientFrame::GetBackup { id }).await),
        Some(ErrorCode::NotFound),
        "no backup yet"
    );
    let v1 = create(&mut a, "sealed-1").await;
    assert_eq!(
        (v1.count, v1.etag, v1.auth_data.as_str()),
        (0, 0, "sealed-1")
    );
    let stored = put(&mut a, &v1.version, vec![key("g:1", "s1", 0, b"k1")]).await;
    let ServerFrame::Backup { backup, .. } = stored else {
        panic!("{stored:?}")
    };
    assert_eq!(backup.count, 1);
    assert_ne!(backup.etag, v1.etag);

    // Bob neither sees Alice's backup nor reaches it by its version.
    assert_eq!(
        code(&b.req(|id| ClientFrame::GetBackup { id }).await),
        Some(ErrorCode::NotFound)
    );
    let stolen = v1.version.clone();
    let answer = b
        .req(|id| ClientFrame::GetBackupKeys {
            id,
            version: stolen,
            after: None,
            limit: None,
        })
        .await;
    assert_eq!(code(&answer), Some(ErrorCode::NotFound));
    assert_eq!(
        code(&put(&mut b, &v1.version, vec![key("g:1", "s1", 0, b"evil")]).await),
        Some(ErrorCode::NotFound)
    );
    let (keys, more) = page(&mut a, &v1.version, None, None).await;
    assert_eq!((keys.len(), more), (1, false));
    assert_eq!(
        keys[0].data,
        STANDARD_NO_PAD.encode(b"k1"),
        "Bob changed nothing"
    );

    // Another device of Alice's makes a new backup: the old version is
    // stale for every request that names it.
    let v2 = create(&mut a, "sealed-2").await;
    assert_ne!(v2.version, v1.version);
    let stale = put(&mut a, &v1.version, vec![key("g:1", "s2", 0, b"k2")]).await;
    let ServerFrame::Error {
        code: stale_code,
        message,
        ..
    } = &stale
    else {
        panic!("{stale:?}")
    };
    assert_eq!(*stale_code, ErrorCode::NotFound);
    assert!(message.contains("get_backup"), "{message}");
    let got = a.req(|id| ClientFrame::GetBackup { id }).await;
    assert!(matches!(got, ServerFrame::Backup { backup, .. } if backup == v2));
    let (keys, _) = page(&mut a, &v2.version, None, None).await;
    assert!(keys.is_empty(), "the old backup's keys went with it");

    let version = v2.version.clone();
    let updated = a
        .req(|id| ClientFrame::UpdateBackup {
            id,
            version,
            auth_data: "sealed-3".into(),
        })
        .await;
    assert!(
        matches!(&updated, ServerFrame::Backup { backup, .. } if backup.auth_data == "sealed-3")
    );
    let version = v1.version.clone();
    let gone = a.req(|id| ClientFrame::DeleteBackup { id, version }).await;
    assert_eq!(code(&gone), Some(ErrorCode::NotFound));
    let version = v2.version.clone();
    let deleted = a.req(|id| ClientFrame::DeleteBackup { id, version }).await;
    assert!(matches!(deleted, ServerFrame::Ok { .. }));
    assert_eq!(
        code(&a.req(|id| ClientFrame::GetBackup { id }).await),
        Some(ErrorCode::NotFound)
    );
}

#[tokio::test]
async fn bad_keys_are_refused_before_anything_is_stored() {
    let mut config = fast_config();
    config.max_backup_keys = 3;
    config.max_backup_key_bytes = 64;
    let s = server(config);
    let (mut a, _, _, _) = two_users(&s).await;
    let v = create(&mut a, "").await;
    let good = key("g:1", "s1", 0, b"k");
    let refusals: Vec<(Vec<BackupKeyInfo>, ErrorCode, &str)> = vec![
        (vec![], ErrorCode::InvalidArgument, "keys"),
        (
            vec![
                good.clone(),
                BackupKeyInfo {
                    data: "not base64!".into(),
                    ..good.clone()
                },
            ],
            ErrorCode::InvalidArgument,
            "data",
        ),
        (
            vec![good.clone(), key("g:1", "s2", 0, &[7; 65])],
            ErrorCode::InvalidArgument,
            "data",
        ),
        (
            vec![good.clone(), key("g:1", "s2", 0, b"")],
            ErrorCode::InvalidArgument,
            "data",
        ),
        (
            vec![good.clone(), key("g:1", "", 0, b"k")],
            ErrorCode::InvalidArgument,
            "session",
        ),
        (
            vec![good.clone(), key("", "s2", 0, b"k")],
            ErrorCode::InvalidArgument,
            "conv",
        ),
        (
            vec![good.clone(), key("g:1", &"s".repeat(2000), 0, b"k")],
            ErrorCode::TooLarge,
            "session",
        ),
    ];
    for (keys, want, field) in refusals {
        let got = put(&mut a, &v.version, keys).await;
        let ServerFrame::Error {
            code,
            field: got_field,
            ..
        } = &got
        else {
            panic!("{field}: {got:?}")
        };
        assert_eq!(
            (*code, got_field.as_deref()),
            (want, Some(field)),
            "{got:?}"
        );
    }
    let (keys, _) = page(&mut a, &v.version, None, None).await;
    assert!(keys.is_empty(), "nothing of a refused request is stored");

    // The bound: three keys fit; a request that would make five stores
    // nothing, not even its key that fits.
    let three: Vec<_> = (0..3)
        .map(|i| key("g:1", &format!("s{i}"), 0, b"k"))
        .collect();
    assert!(matches!(
        put(&mut a, &v.version, three).await,
        ServerFrame::Backup { backup, .. } if backup.count == 3
    ));
    let over = put(
        &mut a,
        &v.version,
        vec![key("g:2", "x", 0, b"k"), key("g:2", "y", 0, b"k")],
    )
    .await;
    assert_eq!(code(&over), Some(ErrorCode::LimitReached));
    let (keys, _) = page(&mut a, &v.version, None, None).await;
    assert_eq!(keys.len(), 3);
    // A better copy of a key it has still goes in.
    assert!(matches!(
        put(&mut a, &v.version, vec![BackupKeyInfo { verified: true, ..key("g:1", "s0", 0, b"v") }]).await,
        ServerFrame::Backup { backup, .. } if backup.count == 3
    ));

    let too_much = "x".repeat(65);
    let refused = a
        .req(|id| ClientFrame::CreateBackup {
            id,
            algorithm: "chatcore.backup.v1".into(),
            auth_data: too_much,
        })
        .await;
    assert_eq!(code(&refused), Some(ErrorCode::TooLarge));
    let refused = a
        .req(|id| ClientFrame::CreateBackup {
            id,
            algorithm: String::new(),
            auth_data: String::new(),
        })
        .await;
    assert_eq!(code(&refused), Some(ErrorCode::InvalidArgument));
    assert!(
        matches!(a.req(|id| ClientFrame::GetBackup { id }).await,
            ServerFrame::Backup { backup, .. } if backup.version == v.version),
        "refused creations replace nothing"
    );
}

#[tokio::test]
async fn keys_page_in_order_of_conversation_and_session() {
    let mut config = fast_config();
    config.max_page = 4;
    let s = server(config);
    let (mut a, _, _, _) = two_users(&s).await;
    let v = create(&mut a, "").await;
    let mut all: Vec<BackupKeyInfo> = (0..10)
        .map(|i| key(&format!("g:{}", i % 3), &format!("s{i}"), 0, b"k"))
        .collect();
    assert!(matches!(
        put(&mut a, &v.version, all.clone()).await,
        ServerFrame::Backup { .. }
    ));
    all.sort_by(|x, y| (&x.conv, &x.session).cmp(&(&y.conv, &y.session)));

    let mut got = Vec::new();
    let mut after = None;
    loop {
        let (keys, more) = page(&mut a, &v.version, after.as_ref(), Some(3)).await;
        assert!(keys.len() <= 3);
        got.extend(keys.iter().cloned());
        after = keys.last().cloned();
        if !more {
            break;
        }
    }
    assert_eq!(got, all);
    // The page size is capped by the server's.
    let (keys, more) = page(&mut a, &v.version, None, Some(1000)).await;
    assert_eq!((keys.len(), more), (4, true));
}
