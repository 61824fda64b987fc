//! The load function: staged files → Delta table rows through a SQL warehouse.

pub mod notifications;
