//! Migrations for the tables `octany-actix` keeps in the host's database.
