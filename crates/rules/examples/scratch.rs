fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let p = if args.first().map(String::as_str) == Some("--default") {
        shrike_rules::Policy::default_pack_with(&args[1..])
    } else {
        shrike_rules::Policy::load(&args)
    };
    match p {
        Ok(p) => {
            print!("{}", shrike_rules::text::list(&p));
            print!("{}", shrike_rules::text::explain(&p));
        }
        Err(d) => print!("{}", shrike_rules::text::render_diagnostics(&d)),
    }
}
