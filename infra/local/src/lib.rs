pub mod table;
pub mod testkit;
