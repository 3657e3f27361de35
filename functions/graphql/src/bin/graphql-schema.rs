//! Prints the schema (SDL); `cargo roost graphql-schema` writes it to docs/schema.graphql.

fn main() {
    print!("{}", graphql::schema::sdl());
}
