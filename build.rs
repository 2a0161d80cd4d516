// Migrations are compiled in (include_dir!), so a new or changed file must
// rebuild the crate.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
