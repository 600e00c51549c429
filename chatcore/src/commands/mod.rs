//! Request handlers, one file per family: plain functions of the server,
//! the caller and the request (see [`crate::request`]).

pub(crate) mod account;
pub(crate) mod backup;
pub(crate) mod calls;
pub(crate) mod contacts;
pub(crate) mod conversations;
pub(crate) mod devices;
pub(crate) mod directory;
pub(crate) mod keys;
pub(crate) mod messaging;
pub(crate) mod requests;
pub(crate) mod to_device;

use crate::error::{invalid, CoreError};

/// Characters of a client-chosen name or id that the server keeps and
/// compares but never reads: a to-device payload's kind and id, a
/// backup's algorithm, a Megolm session id.
pub(crate) const MAX_NAME: usize = 128;

/// Checks such a name: 1 to [`MAX_NAME`] characters, none a control.
pub(crate) fn check_name(field: &str, value: &str) -> Result<(), CoreError> {
    if value.is_empty() || value.chars().count() > MAX_NAME || value.chars().any(char::is_control) {
        return Err(invalid(
            field,
            format!("{field} has 1 to {MAX_NAME} characters, none a control"),
        ));
    }
    Ok(())
}

/// Checks a new avatar (a user's or a group's): none, or a picture that
/// `me` uploaded ([`crate::store::BlobInfo::owner`]): a profile cannot
/// show, nor keep from collection, a file its owner never gave it.
pub(crate) async fn check_picture(
    s: &crate::Server,
    me: &crate::model::UserId,
    avatar: Option<&str>,
) -> Result<(), CoreError> {
    let Some(id) = avatar else {
        return Ok(());
    };
    let Some(media) = crate::model::MediaId::parse(id) else {
        return Err(invalid(
            "avatar",
            "avatar is empty or the id of an uploaded picture",
        ));
    };
    match s.backends.blobs.info(&media).await? {
        None => Err(CoreError::NotFound(format!("no such media: {id}"))),
        Some(info) if info.owner.as_ref() == Some(me) => Ok(()),
        Some(_) => Err(CoreError::Forbidden(
            "an avatar is a picture you uploaded yourself".into(),
        )),
    }
}
