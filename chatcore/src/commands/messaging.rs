//! send, history, sync, ack, read, focus, conversations.

use crate::error::CoreError;
use crate::model::{Content, ConversationId, UserId};
use crate::protocol::{ConversationSummary, ServerFrame};
use crate::session::Session;
use crate::store::{ConversationState, Event, NewMessage, Topic};

impl Session {
    /// The conversation's state if it exists and the caller is a member of
    /// it; `not_found` otherwise. Unknown and foreign conversations get the
    /// same answer, so ids cannot be probed, and nothing about a
    /// conversation that does not exist is stored or watched.
    async fn member_of(&mut self, conv: &ConversationId) -> Result<ConversationState, CoreError> {
        let me = self.auth()?.user.clone();
        let not_found = || CoreError::NotFound("no such conversation".into());
        if !conv.has_member(&me) {
            return Err(not_found());
        }
        let state = self
            .server
            .backends
            .messages
            .conversation(conv)
            .await?
            .ok_or_else(not_found)?;
        if let Some(peer) = conv.peer_of(&me) {
            self.watch_peer(&peer).await?;
        }
        Ok(state)
    }

    /// Spends the sender's budget for a message of `bytes` (across all of
    /// the user's connections and nodes); `rate_limited` past it.
    async fn spend_send_budget(&self, bytes: usize) -> Result<(), CoreError> {
        let cfg = &self.server.config;
        let cost = u64::try_from(bytes)
            .unwrap_or(u64::MAX)
            .max(cfg.send_min_cost);
        let key = &self.auth()?.send_budget_key;
        let now = self.server.now();
        match self
            .server
            .backends
            .limiter
            .spend(key, cost, cfg.send_budget, now)
            .await?
        {
            Some(retry_after_ms) => Err(CoreError::RateLimited { retry_after_ms }),
            None => Ok(()),
        }
    }

    pub(crate) async fn send(
        &mut self,
        id: u32,
        to: UserId,
        client_id: String,
        content: Content,
    ) -> Result<ServerFrame, CoreError> {
        let me = self.auth()?.user.clone();
        if client_id.trim().is_empty() {
            return Err(CoreError::InvalidArgument {
                field: "client_id".into(),
                message: "client_id must not be empty".into(),
            });
        }
        let bytes = match &content {
            Content::Text { text } if text.trim().is_empty() => {
                return Err(CoreError::InvalidArgument {
                    field: "text".into(),
                    message: "a message needs some text".into(),
                })
            }
            Content::Text { text } => text.len(),
        };
        if to == me {
            return Err(CoreError::InvalidArgument {
                field: "to".into(),
                message: "cannot send a message to yourself".into(),
            });
        }
        let known = self.known_users.contains(&to);
        if !known && self.server.backends.users.get(&to).await?.is_none() {
            return Err(CoreError::NotFound("no such user".into()));
        }
        self.spend_send_budget(bytes).await?;
        let conv = ConversationId::direct(&me, &to);
        let msg = NewMessage::new(
            conv.clone(),
            vec![me.clone(), to.clone()],
            me.clone(),
            client_id,
            self.server.now(),
            content,
        );
        let appended = self.server.backends.messages.append(msg).await?;
        let m = appended.message;
        if m.from != me || m.conv != conv {
            // The client reused one of its client ids for a different message.
            return Err(CoreError::Conflict {
                field: "client_id".into(),
            });
        }
        if !known {
            // Known recipients were watched at their first send (or the
            // watch list was full then, and it only grows).
            self.watch_peer(&to).await?;
            if self.known_users.len() < self.server.config.max_watched {
                self.known_users.insert(to.clone());
            }
        }
        if !appended.duplicate {
            self.server
                .metrics
                .messages_stored
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let unread = self
                .server
                .backends
                .messages
                .unread(&to, &conv)
                .await
                .unwrap_or(0);
            let broker = &self.server.backends.broker;
            let to_peer = Event::Message {
                message: m.clone(),
                unread,
                origin: None,
            };
            let to_self = Event::Message {
                message: m.clone(),
                unread: 0,
                origin: Some(self.conn_key.clone()),
            };
            // Stored is what counts: a lost push is recovered by sync.
            for (topic, event) in [(Topic::User(to), to_peer), (Topic::User(me), to_self)] {
                if let Err(e) = broker.publish(&topic, event).await {
                    tracing::warn!(error = %e, "message publish failed; recipients will sync");
                }
            }
        }
        Ok(ServerFrame::Sent {
            id,
            message_id: m.id.clone(),
            conv,
            seq: m.seq,
            ts: m.ts,
            duplicate: appended.duplicate,
        })
    }

    pub(crate) async fn history(
        &mut self,
        id: u32,
        conv: ConversationId,
        before: Option<u64>,
        limit: Option<u32>,
    ) -> Result<ServerFrame, CoreError> {
        self.member_of(&conv).await?;
        let limit = self.page(limit, 50);
        let messages = self
            .server
            .backends
            .messages
            .history(&conv, before, limit)
            .await?;
        let more = messages.first().is_some_and(|m| m.seq > 1);
        Ok(ServerFrame::Messages {
            id,
            conv,
            messages,
            more,
        })
    }

    pub(crate) async fn sync(
        &mut self,
        id: u32,
        limit: Option<u32>,
    ) -> Result<ServerFrame, CoreError> {
        let (me, device) = {
            let a = self.auth()?;
            (a.user.clone(), a.device.clone())
        };
        let limit = self.page(limit, 100);
        let store = &self.server.backends.messages;
        let cursors = store.cursors(&me, &device).await?;
        let mut convs = store.conversations(&me).await?;
        // Oldest activity first, so a paged sync delivers in roughly the order sent.
        convs.reverse();
        let mut messages = Vec::new();
        let mut more = false;
        for c in convs {
            let after = cursors.get(&c.conv).copied().unwrap_or(0);
            if c.last_seq <= after {
                continue;
            }
            let room = limit - messages.len();
            if room == 0 {
                more = true;
                break;
            }
            let batch = store.read_after(&c.conv, after, room).await?;
            if batch.last().is_some_and(|m| m.seq < c.last_seq) {
                more = true;
            }
            messages.extend(batch);
        }
        Ok(ServerFrame::Synced { id, messages, more })
    }

    /// Validates that `seq` exists in `conv`: a cursor or read marker beyond
    /// the head would silently swallow future messages.
    async fn checked_seq(&mut self, conv: &ConversationId, seq: u64) -> Result<(), CoreError> {
        let last = self.member_of(conv).await?.last_seq;
        if seq > last {
            return Err(CoreError::InvalidArgument {
                field: "seq".into(),
                message: format!("seq {seq} is beyond the conversation's last message ({last})"),
            });
        }
        Ok(())
    }

    pub(crate) async fn ack(
        &mut self,
        id: u32,
        conv: ConversationId,
        seq: u64,
    ) -> Result<ServerFrame, CoreError> {
        self.checked_seq(&conv, seq).await?;
        let a = self.auth()?;
        self.server
            .backends
            .messages
            .set_cursor(&a.user, &a.device, &conv, seq)
            .await?;
        Ok(ServerFrame::Ok { id })
    }

    pub(crate) async fn read(
        &mut self,
        id: u32,
        conv: ConversationId,
        seq: u64,
    ) -> Result<ServerFrame, CoreError> {
        self.checked_seq(&conv, seq).await?;
        let me = self.auth()?.user.clone();
        self.server
            .backends
            .messages
            .mark_read(&me, &conv, seq)
            .await?;
        Ok(ServerFrame::Ok { id })
    }

    pub(crate) async fn set_focus(
        &mut self,
        id: u32,
        conv: Option<ConversationId>,
    ) -> Result<ServerFrame, CoreError> {
        if let Some(c) = &conv {
            // A conversation not opened yet (a first message is being
            // written) may be focused: nothing is stored for it.
            let me = &self.auth()?.user;
            if !c.has_member(me) {
                return Err(CoreError::NotFound("no such conversation".into()));
            }
        }
        self.focus = conv;
        Ok(ServerFrame::Ok { id })
    }

    pub(crate) async fn conversations(&mut self, id: u32) -> Result<ServerFrame, CoreError> {
        let me = self.auth()?.user.clone();
        let store = self.server.backends.messages.clone();
        let states = store.conversations(&me).await?;
        let mut out = Vec::with_capacity(states.len().min(self.server.config.max_page));
        for c in states.into_iter().take(self.server.config.max_page) {
            let peer = c.conv.peer_of(&me);
            if let Some(p) = &peer {
                self.watch_peer(p).await?;
            }
            out.push(ConversationSummary {
                unread: store.unread(&me, &c.conv).await?,
                last: store.history(&c.conv, None, 1).await?.pop(),
                last_seq: c.last_seq,
                peer,
                conv: c.conv,
            });
        }
        Ok(ServerFrame::Conversations {
            id,
            conversations: out,
        })
    }
}
