//! Properties of the kernel's sizing: whenever `KernelDesign::plan` accepts
//! a layer, every tile of the simulator's schedule stays inside the kernel's
//! buffers exactly as the kernel indexes them (the C simulation asserts the
//! same), and the descriptor offsets chain the layers through one arena.

use proptest::prelude::*;
use repopt_hls::{HlsError, KernelDesign};
use repopt_sim::{ChipSpec, LayerSchedule, Workload, WorkloadLayer};
use repopt_spec::{conv_out_size, ConvLayer};

fn layer(index: usize, i: usize, o: usize, h: usize, s: usize) -> WorkloadLayer {
    WorkloadLayer {
        name: format!("l{index}"),
        conv: ConvLayer {
            index,
            stage: 0,
            block: index,
            in_channels: i,
            out_channels: o,
            stride: s,
            in_size: h,
            out_size: conv_out_size(h, s),
            has_identity: false,
        },
    }
}

proptest! {
    #[test]
    fn accepted_layers_fit_the_kernels_buffers(
        units in 1usize..5, pi in 1usize..17, po in 1usize..17,
        i in 1usize..80, o in 1usize..80, h in 1usize..40, s in 1usize..3,
        fmap in 200u64..60_000, wbytes in 100u64..40_000,
    ) {
        let mut chip = ChipSpec::preset("edge-fpga").unwrap();
        chip.array.units = units;
        chip.array.pi = pi;
        chip.array.po = po;
        chip.buffers.fmap_bytes = fmap;
        chip.buffers.weight_bytes_per_unit = wbytes;
        let w = Workload { name: "p".into(), layers: vec![layer(0, i, o, h, s)] };
        let Ok(k) = KernelDesign::new(&chip) else { return Ok(()) };
        match k.plan(&chip, &w) {
            Ok(plan) => {
                let l = &plan[0];
                let sched = LayerSchedule::new(&chip, &l.conv);
                prop_assert_eq!(l.schedule, sched);
                prop_assert!(sched.ic_groups <= k.w_groups_max);
                for t in sched.tiles(&chip) {
                    // The kernel's largest band index: ((rows-1)/3 * cols3 + (H-1)/3) * G + G-1.
                    let cols3 = h.div_ceil(3);
                    let top = ((t.in_rows - 1) / 3 * cols3 + (h - 1) / 3) * sched.ic_groups
                        + sched.ic_groups - 1;
                    prop_assert!(top < k.band_bank_words, "tile {:?}", t);
                }
            }
            Err(HlsError::DoesNotFit { .. } | HlsError::Sim(_)) => {}
            Err(e) => prop_assert!(false, "unexpected error {}", e),
        }
    }
}

#[test]
fn offsets_chain_the_layers_through_one_arena() {
    let chip = ChipSpec::preset("edge-fpga").unwrap();
    let w = Workload {
        name: "chain".into(),
        layers: vec![
            layer(0, 3, 16, 20, 2),
            layer(1, 16, 24, 10, 1),
            layer(2, 24, 8, 10, 2),
        ],
    };
    let plan = KernelDesign::new(&chip).unwrap().plan(&chip, &w).unwrap();
    assert_eq!(plan[0].in_offset, 0);
    assert_eq!(plan[0].out_offset, 20 * 20 * 3);
    for pair in plan.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        assert_eq!(b.in_offset, a.out_offset);
        let out = (a.conv.out_size * a.conv.out_size * a.conv.out_channels) as u64;
        assert_eq!(b.out_offset, a.out_offset + out);
        assert_eq!(
            b.weight_offset,
            a.weight_offset + a.conv.weight_count() as u64
        );
        assert_eq!(
            b.param_offset,
            a.param_offset + 3 * a.conv.out_channels as u64
        );
    }
}
