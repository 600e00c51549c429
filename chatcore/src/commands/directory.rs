//! search_users, get_profile, update_profile.

use crate::account::{normalize_about, normalize_avatar, normalize_display_name, search_key};
use crate::error::CoreError;
use crate::model::UserId;
use crate::protocol::{DirectoryEntry, ServerFrame};
use crate::request::{page, Caller, Out};
use crate::server::Server;
use crate::store::{ProfileUpdate, SearchQuery, UserRecord};

async fn entries(s: &Server, users: Vec<UserRecord>) -> Result<Vec<DirectoryEntry>, CoreError> {
    let ids: Vec<UserId> = users.iter().map(|u| u.id.clone()).collect();
    let presence = s.backends.presence.get(&ids).await?;
    Ok(users
        .iter()
        .zip(presence)
        .map(|(u, presence)| DirectoryEntry {
            profile: u.profile(),
            presence,
        })
        .collect())
}

async fn entry(s: &Server, user: UserRecord) -> Result<DirectoryEntry, CoreError> {
    entries(s, vec![user])
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
    let query = SearchQuery::new(search_key(&query), after, limit);
    let users = s.backends.users.search(&query).await?;
    let next = (users.len() == limit)
        .then(|| users.last().map(|u| u.username_key.clone()))
        .flatten();
    let entries = entries(s, users).await?;
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
        entry: entry(s, record).await?,
    })
}

pub(crate) async fn update_profile(
    s: &Server,
    caller: &Caller,
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
    let record = s
        .backends
        .users
        .update_profile(&caller.user, &update)
        .await?;
    Ok(ServerFrame::Profile {
        id,
        entry: entry(s, record).await?,
    })
}
