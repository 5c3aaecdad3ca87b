#[derive(octany_actix_macros::Billable)]
#[billable(mail = "email")]
struct User {
    id: i32,
    email: String,
}

fn main() {}
