//! search_users, get_profile, update_profile.

use crate::account::{normalize_about, normalize_avatar, normalize_display_name, search_key};
use crate::error::CoreError;
use crate::model::UserId;
use crate::protocol::{DirectoryEntry, ServerFrame};
use crate::session::Session;
use crate::store::{ProfileUpdate, SearchQuery, UserRecord};

impl Session {
    /// Clamps a client's page size to `1..=max_page`, `default` if absent.
    pub(crate) fn page(&self, limit: Option<u32>, default: usize) -> usize {
        limit
            .map_or(default, |l| usize::try_from(l).unwrap_or(usize::MAX))
            .clamp(1, self.server.config.max_page)
    }

    async fn entries(&self, users: Vec<UserRecord>) -> Result<Vec<DirectoryEntry>, CoreError> {
        let ids: Vec<UserId> = users.iter().map(|u| u.id.clone()).collect();
        let presence = self.server.backends.presence.get(&ids).await?;
        Ok(users
            .iter()
            .zip(presence)
            .map(|(u, presence)| DirectoryEntry {
                profile: u.profile(),
                presence,
            })
            .collect())
    }

    pub(crate) async fn search_users(
        &mut self,
        id: u32,
        query: String,
        after: Option<String>,
        limit: Option<u32>,
    ) -> Result<ServerFrame, CoreError> {
        let limit = self.page(limit, 20);
        let query = SearchQuery::new(search_key(&query), after, limit);
        let users = self.server.backends.users.search(&query).await?;
        let next = (users.len() == limit)
            .then(|| users.last().map(|u| u.username_key.clone()))
            .flatten();
        let entries = self.entries(users).await?;
        self.watch_directory(entries.iter().map(|e| e.profile.user.clone()))
            .await?;
        Ok(ServerFrame::Users {
            id,
            users: entries,
            next,
        })
    }

    pub(crate) async fn get_profile(
        &mut self,
        id: u32,
        user: UserId,
    ) -> Result<ServerFrame, CoreError> {
        let record = self
            .server
            .backends
            .users
            .get(&user)
            .await?
            .ok_or_else(|| CoreError::NotFound("no such user".into()))?;
        let entry = self
            .entries(vec![record])
            .await?
            .pop()
            .ok_or_else(|| CoreError::Internal("presence lookup returned nothing".into()))?;
        Ok(ServerFrame::Profile { id, entry })
    }

    pub(crate) async fn update_profile(
        &mut self,
        id: u32,
        display_name: Option<String>,
        about: Option<String>,
        avatar: Option<String>,
    ) -> Result<ServerFrame, CoreError> {
        let me = self.auth()?.user.clone();
        let update = ProfileUpdate {
            display_name: display_name
                .as_deref()
                .map(normalize_display_name)
                .transpose()?,
            about: about.as_deref().map(normalize_about).transpose()?,
            avatar: avatar.as_deref().map(normalize_avatar).transpose()?,
        };
        let record = self
            .server
            .backends
            .users
            .update_profile(&me, &update)
            .await?;
        let entry = self
            .entries(vec![record])
            .await?
            .pop()
            .ok_or_else(|| CoreError::Internal("presence lookup returned nothing".into()))?;
        Ok(ServerFrame::Profile { id, entry })
    }
}
