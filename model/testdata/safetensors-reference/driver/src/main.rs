//! Prints the reference safetensors crate's verdict on each file named on
//! the command line: `NAME<TAB>ok` or `NAME<TAB>error<TAB>KIND`, where KIND
//! is the SafeTensorError variant. SafeTensors::deserialize is what the
//! Python and Rust loaders call on a whole file.
use safetensors::SafeTensors;
use std::path::Path;

fn main() {
    for arg in std::env::args().skip(1) {
        let bytes = std::fs::read(&arg).expect("read corpus file");
        let name = Path::new(&arg).file_name().unwrap().to_string_lossy().into_owned();
        match std::panic::catch_unwind(|| SafeTensors::deserialize(&bytes).map(|_| ())) {
            Ok(Ok(())) => println!("{name}\tok"),
            Ok(Err(e)) => {
                let kind = format!("{e:?}");
                let kind = kind.split(|c: char| !c.is_alphanumeric()).next().unwrap_or("");
                println!("{name}\terror\t{kind}");
            }
            Err(_) => println!("{name}\tpanic"),
        }
    }
}
