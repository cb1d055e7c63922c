fn main() {
    println!("repopt");
}
