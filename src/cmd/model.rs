use anyhow::Context;
use clap::Args;
use repopt_spec::ModelSpec;

#[derive(Args)]
pub struct ModelArgs {
    /// Preset name (tiny, small, A0..B3, L1, L2) or path to a JSON spec file.
    #[arg(default_value = "tiny")]
    pub model: String,
    /// Print the spec as JSON (a starting point for your own spec file).
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: ModelArgs) -> anyhow::Result<()> {
    let spec = ModelSpec::resolve(&args.model).context("resolving --model")?;
    if args.json {
        println!("{}", spec.to_json());
        return Ok(());
    }
    let p = spec.param_counts();
    println!(
        "{}: {} conv layers, input {}x{}x{}, {} classes, {:.2} GMAC/image",
        spec.name,
        spec.conv_layers().len(),
        spec.in_channels,
        spec.image_size,
        spec.image_size,
        spec.classes,
        spec.macs() as f64 / 1e9
    );
    println!(
        "params: RepOpt-VGG {:.2}M, Hyper-Search {:.2}M, RepVGG train {:.2}M / deploy {:.2}M",
        p.repopt_vgg as f64 / 1e6,
        p.hyper_search as f64 / 1e6,
        p.repvgg_train as f64 / 1e6,
        p.repvgg_deploy as f64 / 1e6
    );
    println!(
        "{:<10} {:>5} {:>5} {:>6} {:>9} {:>8}",
        "layer", "in", "out", "stride", "map", "identity"
    );
    for l in spec.conv_layers() {
        println!(
            "{:<10} {:>5} {:>5} {:>6} {:>4}->{:<4} {:>8}",
            l.name(),
            l.in_channels,
            l.out_channels,
            l.stride,
            l.in_size,
            l.out_size,
            if l.has_identity { "yes" } else { "" }
        );
    }
    Ok(())
}
