//! search_users, get_profile, update_profile.

use crate::account::{normalize_about, normalize_avatar, normalize_display_name, search_key};
use crate::contacts;
use crate::error::CoreError;
use crate::model::{Presence, UserId};
use crate::protocol::{DirectoryEntry, ServerFrame};
use crate::request::{page, Caller, Out};
use crate::server::Server;
use crate::store::{Event, ProfileUpdate, SearchQuery, Topic, UserRecord};

/// The directory entries of `users` as `caller` may see them: presence
/// hidden where the privacy settings or a block say so, and (`drop_blockers`)
/// without the users who block the caller.
async fn entries(
    s: &Server,
    caller: &Caller,
    users: Vec<UserRecord>,
    drop_blockers: bool,
) -> Result<Vec<DirectoryEntry>, CoreError> {
    let me = &caller.user;
    let ids: Vec<UserId> = users.iter().map(|u| u.id.clone()).collect();
    let relations = s.backends.contacts.relations(me, &ids).await?;
    let mine = match users.iter().find(|u| u.id == *me) {
        Some(u) => u.privacy,
        None => s
            .backends
            .users
            .get(me)
            .await?
            .map(|u| u.privacy)
            .unwrap_or_default(),
    };
    let presence = s.backends.presence.get(&ids).await?;
    Ok(users
        .iter()
        .zip(presence)
        .filter_map(|(u, presence)| {
            if u.id == *me {
                return Some(DirectoryEntry {
                    profile: u.profile(),
                    presence,
                });
            }
            let relation = relations.iter().find(|r| r.side(&u.id).is_some());
            if drop_blockers && relation.is_some_and(|r| r.blocks(&u.id)) {
                return None;
            }
            Some(DirectoryEntry {
                profile: u.profile(),
                presence: contacts::as_seen(relation, &mine, &u.privacy, presence),
            })
        })
        .collect())
}

async fn entry(s: &Server, caller: &Caller, user: UserRecord) -> Result<DirectoryEntry, CoreError> {
    entries(s, caller, vec![user], false)
        .await?
        .pop()
        .ok_or_else(|| CoreError::Internal("presence lookup returned nothing".into()))
}

pub(crate) async fn search_users(
    s: &Server,
    caller: &Caller,
    out: &mut Out,
    id: u32,
    query: String,
    after: Option<String>,
    limit: Option<u32>,
) -> Result<ServerFrame, CoreError> {
    let limit = page(s, limit, 20);
    // The unfiltered first page also learns of users who register while it
    // is shown (`new_user`).
    out.new_users = query.trim().is_empty() && after.is_none();
    let query = SearchQuery::new(search_key(&query), after, limit);
    let users = s.backends.users.search(&query).await?;
    let next = (users.len() == limit)
        .then(|| users.last().map(|u| u.username_key.clone()))
        .flatten();
    let entries = entries(s, caller, users, true).await?;
    // The connection watches the presence of whom its directory shows.
    out.directory = Some(
        entries
            .iter()
            .map(|e| e.profile.user.clone())
            .filter(|u| *u != caller.user)
            .collect(),
    );
    Ok(ServerFrame::Users {
        id,
        users: entries,
        next,
    })
}

pub(crate) async fn get_profile(
    s: &Server,
    caller: &Caller,
    id: u32,
    user: UserId,
) -> Result<ServerFrame, CoreError> {
    let record = s
        .backends
        .users
        .get(&user)
        .await?
        .ok_or_else(|| CoreError::NotFound("no such user".into()))?;
    Ok(ServerFrame::Profile {
        id,
        entry: Box::new(entry(s, caller, record).await?),
    })
}

pub(crate) async fn update_profile(
    s: &Server,
    caller: &Caller,
    out: &mut Out,
    id: u32,
    display_name: Option<String>,
    about: Option<String>,
    avatar: Option<String>,
) -> Result<ServerFrame, CoreError> {
    let update = ProfileUpdate {
        display_name: display_name
            .as_deref()
            .map(normalize_display_name)
            .transpose()?,
        about: about.as_deref().map(normalize_about).transpose()?,
        avatar: avatar.as_deref().map(normalize_avatar).transpose()?,
    };
    let picture = update.avatar.as_ref().and_then(|a| a.as_deref());
    super::check_picture(s, &caller.user, picture).await?;
    let record = s
        .backends
        .users
        .update_profile(&caller.user, &update)
        .await?;
    // Whoever sees the user (watching their presence) and the user's other
    // devices get the new card; this connection has it in the reply.
    let profile = Box::new(record.profile());
    for topic in [
        Topic::Presence(caller.user.clone()),
        Topic::User(caller.user.clone()),
    ] {
        out.publish(
            topic,
            Event::Profile {
                profile: profile.clone(),
                origin: caller.conn.clone(),
            },
        );
    }
    Ok(ServerFrame::Profile {
        id,
        entry: Box::new(entry(s, caller, record).await?),
    })
}

/// Announces a user who just registered (and is signing in: online) to the
/// connections showing the unfiltered first page of the directory. Every
/// registration spent the global registration budget first, which bounds
/// these pushes. The one place that decides who is announced: a user hidden
/// from the directory (privacy settings) is simply not published here.
pub(crate) fn announce_new_user(out: &mut Out, user: &UserRecord) {
    let entry = DirectoryEntry {
        profile: user.profile(),
        presence: Presence {
            user: user.id.clone(),
            online: true,
            last_seen: None,
        },
    };
    out.publish(Topic::Directory, Event::NewUser(Box::new(entry)));
}
