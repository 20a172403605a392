//! The fencing counter's setup, worded once for every SQL backend.

use locksmith_core::{BoxError, Error};

/// The error for a fencing counter that is missing and that this role may not create: it
/// says so and gives the SQL an administrator runs once.
pub fn counter_setup_error(url: &str, what: &str, sql: &str, source: BoxError) -> Error {
    Error::backend(
        url,
        None,
        format!(
            "the fencing counter {what} does not exist and this role may not create it; \
             have an administrator run once, in this database:\n    {sql}"
        ),
        source,
    )
}
