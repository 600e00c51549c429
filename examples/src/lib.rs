//! Programs that embed chatcore; see the `[[example]]` entries.
