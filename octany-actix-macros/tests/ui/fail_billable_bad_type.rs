#[derive(octany_actix_macros::Billable)]
#[billable(type = "user:admin")]
struct User {
    id: i32,
}

fn main() {}
