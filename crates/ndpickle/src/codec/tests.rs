//! Round trips, the auto policy, cross-checks against the reference decoders, and bad input.

use super::*;
use proptest::prelude::*;

/// Deterministic pseudo-random bytes (splitmix64).
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        out.extend_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// A smooth float64 series: compressible, and much more so after a shuffle.
fn smooth(len: usize) -> Vec<u8> {
    let mut v: Vec<u8> = (0..len.div_ceil(8))
        .flat_map(|i| (1000.0 + (i as f64 * 1e-3).sin()).to_le_bytes())
        .collect();
    v.truncate(len);
    v
}

fn scratch(block_size: usize, threads: usize) -> Scratch {
    Scratch::with_options(
        CodecOptions::builder()
            .block_size(block_size)
            .threads(threads)
            .build()
            .unwrap(),
    )
}

const CODECS: [Codec; 3] = [
    Codec::Lz4,
    Codec::Zstd { level: 1 },
    Codec::Zstd { level: 3 },
];

fn round_trip(data: &[u8], codec: Codec, filter: Filter, s: &mut Scratch) -> Compressed {
    let c = compress(data, &Compression::Fixed(codec, filter), s).unwrap();
    assert!(!c.is_raw());
    assert_eq!(c.info().raw_len(), data.len() as u64);
    assert_eq!(c.info().frame_len(), c.bytes().len() as u64);
    let back = decompress_with(c.bytes(), c.info(), data.len(), s).unwrap();
    assert_eq!(back, data, "{codec:?} {filter:?} len {}", data.len());
    // The header survives serialization.
    let (info, _) = FrameInfo::from_bytes(&c.info().to_bytes()).unwrap();
    assert_eq!(&info, c.info());
    c
}

#[test]
fn round_trips_every_codec_filter_elem_size() {
    let block = 4096;
    let mut s1 = scratch(block, 1);
    let mut s3 = scratch(block, 3);
    for len in [0, 1, 7, 13, 100, 4093, 4096, 4099, 3 * 4096 + 5, 40_000] {
        for seed_data in [noise(len, len as u64), smooth(len)] {
            for codec in CODECS {
                for elem in [0, 1, 2, 3, 4, 8, 16] {
                    let filter = if elem == 0 {
                        Filter::None
                    } else {
                        Filter::Shuffle { elem_size: elem }
                    };
                    let a = round_trip(&seed_data, codec, filter, &mut s1);
                    let b = round_trip(&seed_data, codec, filter, &mut s3);
                    // Threads do not change the bytes.
                    assert_eq!(a.bytes(), b.bytes());
                    assert_eq!(a.info(), b.info());
                    let expected_blocks = len.div_ceil(block / elem.max(1) * elem.max(1)).max(1);
                    assert_eq!(a.info().block_lens().len(), expected_blocks);
                }
            }
        }
    }
}

#[test]
fn shuffle_by_one_is_plain_and_shuffle_helps_floats() {
    let data = smooth(1 << 16);
    let mut s = Scratch::new();
    let plain = round_trip(&data, Codec::Lz4, Filter::Shuffle { elem_size: 1 }, &mut s);
    assert!(plain.info().is_plain());
    assert_eq!(plain.info().filter(), Filter::None);
    let shuffled = round_trip(&data, Codec::Lz4, Filter::Shuffle { elem_size: 8 }, &mut s);
    assert!(shuffled.bytes().len() * 4 < plain.bytes().len() * 3);
}

#[test]
fn plain_frames_are_the_reference_layouts() {
    let data = smooth(100_000);
    let mut s = Scratch::new();
    let lz = round_trip(&data, Codec::Lz4, Filter::None, &mut s);
    assert!(lz.info().is_plain());
    assert_eq!(lz.bytes()[..4], (data.len() as u32).to_le_bytes());
    assert_eq!(
        lz4_flex::block::decompress_size_prepended(lz.bytes()).unwrap(),
        data
    );
    let zs = round_trip(&data, Codec::Zstd { level: 3 }, Filter::None, &mut s);
    assert_eq!(
        ::zstd::bulk::decompress(zs.bytes(), data.len()).unwrap(),
        data
    );
    assert_eq!(
        ::zstd::zstd_safe::get_frame_content_size(zs.bytes()).unwrap(),
        Some(data.len() as u64)
    );
    // And frames from the reference encoders decode through from_plain_frame.
    let theirs = lz4_flex::block::compress_prepend_size(&data);
    let info = FrameInfo::from_plain_frame(Codec::Lz4, &theirs).unwrap();
    assert_eq!(decompress(&theirs, &info, data.len()).unwrap(), data);
    let theirs = ::zstd::bulk::compress(&data, 5).unwrap();
    let info = FrameInfo::from_plain_frame(Codec::Zstd { level: 0 }, &theirs).unwrap();
    assert_eq!(decompress(&theirs, &info, data.len()).unwrap(), data);
}

#[test]
fn single_block_option_keeps_big_frames_plain() {
    let data = smooth(3 << 20);
    let mut s = Scratch::with_options(CodecOptions::builder().single_block().build().unwrap());
    let c = round_trip(&data, Codec::Lz4, Filter::None, &mut s);
    assert!(c.info().is_plain());
    let mut s = Scratch::new();
    let c = round_trip(&data, Codec::Lz4, Filter::None, &mut s);
    assert_eq!(c.info().block_lens().len(), 3);
}

#[test]
fn auto_policy_decisions() {
    let auto = Compression::default().with_elem_size(8);
    let mut s = Scratch::new();
    let small = compress(&smooth(1000), &auto, &mut s).unwrap();
    assert_eq!(small.kept_raw(), Some(KeptRaw::TooSmall));
    let random = compress(&noise(1 << 20, 1), &auto, &mut s).unwrap();
    assert_eq!(random.kept_raw(), Some(KeptRaw::SampleIncompressible));
    assert!(random.bytes().is_empty());
    assert_eq!(random.info().codec(), Codec::None);
    let data = smooth(1 << 20);
    let good = compress(&data, &auto, &mut s).unwrap();
    assert_eq!(good.kept_raw(), None);
    assert_eq!(good.info().filter(), Filter::Shuffle { elem_size: 8 });
    assert_eq!(
        decompress(good.bytes(), good.info(), data.len()).unwrap(),
        data
    );
    // A sample that passes but a whole that does not shrink enough: cut short.
    let strict = AutoPolicy::builder()
        .sample_ratio(1.0)
        .keep_ratio(0.01)
        .filter(Filter::Shuffle { elem_size: 8 })
        .build()
        .unwrap();
    let c = compress(&data, &Compression::Auto(strict), &mut s).unwrap();
    assert_eq!(c.kept_raw(), Some(KeptRaw::Incompressible));
    assert_eq!(
        compress(&data, &Compression::Off, &mut s)
            .unwrap()
            .kept_raw(),
        Some(KeptRaw::Off)
    );
}

#[test]
fn invalid_settings_are_refused() {
    let mut s = Scratch::new();
    let unset = Compression::default();
    assert!(matches!(
        compress(&smooth(1 << 20), &unset, &mut s),
        Err(EncodeError::InvalidOption(_))
    ));
    assert!(AutoPolicy::builder().keep_ratio(1.5).build().is_err());
    assert!(AutoPolicy::builder().codec(Codec::None).build().is_err());
    assert!(AutoPolicy::builder().sample(0, 10).build().is_err());
    assert!(CodecOptions::builder().threads(0).build().is_err());
    assert!(CodecOptions::builder().block_size(10).build().is_err());
    for bad in [0, MAX_LZ4_ACCELERATION + 1] {
        let e = CodecOptions::builder()
            .lz4_acceleration(bad)
            .build()
            .unwrap_err();
        assert!(e.to_string().contains("lz4 acceleration"), "{e}");
    }
}

#[test]
fn lz4_acceleration_trades_ratio_for_speed_and_frames_stay_readable() {
    // Short, irregular matches: where acceleration skips ahead.
    let data: Vec<u8> = noise(1 << 18, 9).iter().map(|b| b % 5).collect();
    let mut sizes = vec![];
    for accel in [1, 8, 64] {
        let mut s = Scratch::with_options(
            CodecOptions::builder()
                .lz4_acceleration(accel)
                .threads(1)
                .build()
                .unwrap(),
        );
        let c = round_trip(&data, Codec::Lz4, Filter::None, &mut s);
        // Whatever the acceleration, python-lz4's layout: lz4_flex reads it.
        assert_eq!(
            lz4_flex::block::decompress_size_prepended(c.bytes()).unwrap(),
            data
        );
        sizes.push(c.bytes().len());
    }
    assert!(sizes[0] < sizes[1] && sizes[1] < sizes[2], "{sizes:?}");
}

fn codec_err(e: &DecodeError) -> bool {
    matches!(e.kind, DecodeErrorKind::Codec(_) | DecodeErrorKind::Wire(_))
}

#[test]
fn truncated_and_corrupt_frames_fail_cleanly() {
    let data = smooth(20_000);
    let mut s = scratch(4096, 2);
    for codec in CODECS {
        for filter in [Filter::None, Filter::Shuffle { elem_size: 8 }] {
            let c = round_trip(&data, codec, filter, &mut s);
            let frame = c.bytes();
            // A truncated frame no longer matches its header.
            for cut in [0, 1, frame.len() / 2, frame.len() - 1] {
                let e = decompress(&frame[..cut], c.info(), data.len()).unwrap_err();
                assert!(codec_err(&e), "{e}");
            }
            // Truncated blocks with a header that agrees with them.
            let lens = c.info().block_lens();
            let mut cut_lens = lens.to_vec();
            cut_lens[0] -= 3;
            let mut cut_frame = frame[..lens[0] as usize - 3].to_vec();
            cut_frame.extend_from_slice(&frame[lens[0] as usize..]);
            let info = FrameInfo::new(
                codec,
                c.info().filter(),
                data.len() as u64,
                c.info().block_size(),
                cut_lens,
            )
            .unwrap();
            let e = decompress(&cut_frame, &info, data.len()).unwrap_err();
            assert!(codec_err(&e), "{e}");
            // Flipped bytes: an error or some output of the right length, never a panic.
            for pos in (0..frame.len()).step_by(frame.len() / 50 + 1) {
                let mut bad = frame.to_vec();
                bad[pos] ^= 0x5A;
                if let Ok(out) = decompress(&bad, c.info(), data.len()) {
                    assert_eq!(out.len(), data.len());
                }
            }
        }
    }
}

/// int32 labels below 256 in runs: after the shuffle, planes 1–3 are all zero.
fn small_labels(n: usize) -> Vec<u8> {
    (0..n as u64)
        .flat_map(|i| ((noise(8, i / 16)[0] % 200) as i32).to_le_bytes())
        .collect()
}

#[test]
fn constant_planes_are_runs_and_their_corruption_is_caught() {
    let data = small_labels(4096);
    let mut s = scratch(1 << 20, 1);
    let c = round_trip(&data, Codec::Lz4, Filter::Shuffle { elem_size: 4 }, &mut s);
    assert_eq!(c.info().streams(), Streams::Split);
    let frame = c.bytes();
    let entry = |p: usize| u32::from_le_bytes(frame[4 * p..4 * p + 4].try_into().unwrap());
    // Plane 0 is an lz4 frame; planes 1–3 are one zero byte each, at the very end.
    assert_eq!(entry(0) >> 30, 0);
    for p in 1..4 {
        assert_eq!(entry(p), blocks::RUN_STREAM | 1, "plane {p}");
    }
    assert_eq!(&frame[frame.len() - 3..], &[0, 0, 0]);
    let decode = |f: &[u8], lens: Vec<u32>| {
        let info = FrameInfo::new(
            Codec::Lz4,
            c.info().filter(),
            data.len() as u64,
            1 << 20,
            lens,
        )
        .and_then(|i| i.with_streams(Streams::Split))
        .unwrap();
        decompress(f, &info, data.len())
    };
    assert_eq!(decode(frame, vec![frame.len() as u32]).unwrap(), data);
    // A different run byte decodes to different data: the byte really is used.
    let mut other = frame.to_vec();
    *other.last_mut().unwrap() = 7;
    let out = decode(&other, vec![other.len() as u32]).unwrap();
    assert!(out.chunks(4).all(|e| e[3] == 7));
    // Both flags at once.
    let mut both = frame.to_vec();
    both[4..8].copy_from_slice(&(blocks::RUN_STREAM | blocks::RAW_STREAM | 1).to_le_bytes());
    let e = decode(&both, vec![both.len() as u32]).unwrap_err();
    assert!(e.to_string().contains("both raw and a run"), "{e}");
    // A run stream longer than one byte (the next plane's byte moves into it).
    let mut long = frame.to_vec();
    long[4..8].copy_from_slice(&(blocks::RUN_STREAM | 2).to_le_bytes());
    let e = decode(&long, vec![long.len() as u32]).unwrap_err();
    assert!(codec_err(&e), "{e}");
    // A run stream of zero bytes.
    let mut empty = frame.to_vec();
    empty[12..16].copy_from_slice(&blocks::RUN_STREAM.to_le_bytes());
    let e = decode(&empty, vec![empty.len() as u32]).unwrap_err();
    assert!(e.to_string().contains("run byte plane"), "{e}");
}

#[test]
fn decompression_bombs_hit_the_limit() {
    // A header claiming 2**40 raw bytes.
    let info = FrameInfo::new(
        Codec::Lz4,
        Filter::None,
        1 << 40,
        MAX_BLOCK_SIZE as u32,
        vec![10; (1u64 << 40).div_ceil(MAX_BLOCK_SIZE as u64) as usize],
    )
    .unwrap();
    let e = decompress(&[0; 10], &info, 1 << 30).unwrap_err();
    assert!(
        matches!(e.kind, DecodeErrorKind::Limit { max, .. } if max == 1 << 30),
        "{e}"
    );
    // A plain lz4 frame whose prefix claims 4 GiB - 1.
    let mut frame = u32::MAX.to_le_bytes().to_vec();
    frame.push(0);
    match FrameInfo::from_plain_frame(Codec::Lz4, &frame) {
        Ok(info) => {
            let e = decompress(&frame, &info, 1 << 20).unwrap_err();
            assert!(matches!(e.kind, DecodeErrorKind::Limit { .. }), "{e}");
        }
        Err(e) => assert!(codec_err(&e)),
    }
    // A real lz4 frame of 1 MiB of zeros whose header admits it: over a 1 KiB limit.
    let zeros = lz4_flex::block::compress_prepend_size(&vec![0; 1 << 20]);
    let info = FrameInfo::from_plain_frame(Codec::Lz4, &zeros).unwrap();
    assert!(decompress(&zeros, &info, 1024).is_err());
    // The lz4 prefix disagreeing with the header.
    let info = FrameInfo::new(
        Codec::Lz4,
        Filter::None,
        100,
        4096,
        vec![zeros.len() as u32],
    )
    .unwrap();
    let e = decompress(&zeros, &info, 1 << 30).unwrap_err();
    assert!(e.to_string().contains("lz4 block says"), "{e}");
    // A zstd frame claiming 2**40 bytes in its own header.
    let mut z = ::zstd::bulk::compress(&[0u8; 100], 1).unwrap();
    let e = match FrameInfo::from_plain_frame(Codec::Zstd { level: 1 }, &z) {
        Ok(info) => decompress(&z, &info, 50).unwrap_err(),
        Err(e) => e,
    };
    assert!(matches!(e.kind, DecodeErrorKind::Limit { .. }), "{e}");
    z.truncate(3);
    assert!(FrameInfo::from_plain_frame(Codec::Zstd { level: 1 }, &z).is_err());
}

#[test]
fn raw_info_round_trips() {
    let data = noise(1000, 3);
    let info = FrameInfo::raw(1000);
    assert_eq!(decompress(&data, &info, 1000).unwrap(), data);
    assert!(decompress(&data[..999], &info, 1000).is_err());
    let mut out = vec![0; 999];
    assert!(decompress_into(&data, &info, &mut out, &mut Scratch::new()).is_err());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn proptest_round_trip(
        data in proptest::collection::vec(0u8..4, 0..20_000),
        elem in 0usize..18,
        codec in 0usize..3,
        block in 4096usize..9000,
        threads in 1usize..4,
    ) {
        let filter = if elem == 0 { Filter::None } else { Filter::Shuffle { elem_size: elem } };
        let mut s = scratch(block, threads);
        let c = compress(&data, &Compression::Fixed(CODECS[codec], filter), &mut s).unwrap();
        let back = decompress_with(c.bytes(), c.info(), data.len(), &mut s).unwrap();
        prop_assert_eq!(back, data);
    }

    #[test]
    fn proptest_garbage_never_panics(
        frame in proptest::collection::vec(any::<u8>(), 0..300),
        codec in 0usize..3,
        raw_len in 0u64..5000,
        elem in 1usize..9,
    ) {
        let filter = if elem == 1 { Filter::None } else { Filter::Shuffle { elem_size: elem } };
        let block = (4096 / elem * elem) as u32;
        let n = raw_len.div_ceil(u64::from(block)).max(1) as usize;
        let mut lens = vec![0u32; n];
        // Spread the frame over the blocks.
        for (i, l) in lens.iter_mut().enumerate() {
            *l = ((i + 1) * frame.len() / n - i * frame.len() / n) as u32;
        }
        let info = FrameInfo::new(CODECS[codec], filter, raw_len, block, lens).unwrap();
        let _ = decompress(&frame, &info, 4096);
        let _ = FrameInfo::from_bytes(&frame);
        let _ = FrameInfo::from_plain_frame(CODECS[codec], &frame);
    }
}

#[test]
fn compress_if_smaller_keeps_only_shorter_frames() {
    let mut s = Scratch::new();
    let fixed = |codec| Compression::Fixed(codec, Filter::None);
    for codec in [Codec::Lz4, Codec::Zstd { level: 3 }] {
        // Noise does not shrink (the codec's frame is longer than the data): sent raw.
        for len in [0, 1, 100, 70_000] {
            let data = noise(len, len as u64);
            assert!(compress(&data, &fixed(codec), &mut s).is_ok());
            assert!(
                compress_if_smaller(&data, &fixed(codec), &mut s)
                    .unwrap()
                    .is_none(),
                "{codec:?} {len}"
            );
        }
        // Repetitive data does: the frame is strictly shorter and decodes back.
        let data: Vec<u8> = (0..100_000u32).map(|i| (i / 64 % 7) as u8).collect();
        let (info, frame) = compress_if_smaller(&data, &fixed(codec), &mut s)
            .unwrap()
            .expect("compresses");
        assert!(frame.len() < data.len());
        let mut out = vec![0u8; data.len()];
        decompress_into(&frame, &info, &mut out, &mut s).unwrap();
        assert_eq!(out, data);
    }
    assert!(
        compress_if_smaller(&smooth(1000), &Compression::Off, &mut s)
            .unwrap()
            .is_none()
    );
}

#[test]
fn zstd_splits_the_blocks_whose_planes_are_noise_or_constant() {
    // Block 0: float64 noise (every plane incompressible); block 1: eight-byte elements whose
    // every plane takes a few values (compressible, neither constant nor noise); block 2:
    // small whole numbers as float64 (five constant low mantissa planes).
    let block = 1 << 20;
    let mut data = noise(block, 11);
    data.extend((0..block).map(|k| ((k / 128) % 7 + (k % 8) * 3) as u8));
    data.extend((0..block as u64 / 8).flat_map(|i| ((i / 16 % 200) as f64).to_le_bytes()));
    let mut s = scratch(block, 1);
    let filter = Filter::Shuffle { elem_size: 8 };
    let c = round_trip(&data, Codec::Zstd { level: 1 }, filter, &mut s);
    assert_eq!(c.info().streams(), Streams::PerBlock);
    let lens = c.info().block_lens().to_vec();
    let (first, rest) = c.bytes().split_at(lens[0] as usize);
    let (second, third) = rest.split_at(lens[1] as usize);
    assert!(
        !first.starts_with(&header::ZSTD_MAGIC),
        "the noise block is split"
    );
    assert!(
        second.starts_with(&header::ZSTD_MAGIC),
        "the few-values block is one frame"
    );
    assert!(
        !third.starts_with(&header::ZSTD_MAGIC),
        "the whole numbers' block is split"
    );
    let entry = |p: usize| u32::from_le_bytes(third[4 * p..4 * p + 4].try_into().unwrap());
    assert_eq!(
        entry(0),
        blocks::RUN_STREAM | 1,
        "a zero mantissa plane is a run"
    );
    // A split block's first entry says plane 0 is stored raw.
    assert_ne!(
        u32::from_le_bytes(first[..4].try_into().unwrap()) & blocks::RAW_STREAM,
        0
    );
    // A block passed off as the other kind is an error, not a panic or garbage.
    let decode = |f: &[u8]| decompress(f, c.info(), data.len());
    let mut forged = c.bytes().to_vec();
    forged[..4].copy_from_slice(&header::ZSTD_MAGIC);
    assert!(codec_err(&decode(&forged).unwrap_err()));
    let mut forged = c.bytes().to_vec();
    forged[lens[0] as usize] ^= 0xFF;
    assert!(codec_err(&decode(&forged).unwrap_err()));
    // lz4 keeps splitting every block.
    let c = round_trip(&data, Codec::Lz4, filter, &mut s);
    assert_eq!(c.info().streams(), Streams::Split);
}

#[test]
fn the_scratch_of_a_huge_block_is_not_kept() {
    let data = smooth(8 << 20);
    let filter = Filter::Shuffle { elem_size: 8 };
    for codec in CODECS {
        // One 8 MiB block: compressing and decoding it need 8 MiB of shuffle scratch.
        let mut s = scratch(8 << 20, 1);
        let c = round_trip(&data, codec, filter, &mut s);
        assert_eq!(c.info().block_lens().len(), 1);
        assert!(
            s.workers(1)[0].shuf.capacity() <= blocks::KEPT_SCRATCH,
            "{codec:?}"
        );
        // Default blocks keep theirs for the next call.
        let mut s = scratch(DEFAULT_BLOCK_SIZE, 2);
        round_trip(&data, codec, filter, &mut s);
        for w in s.workers(2) {
            assert!(w.shuf.capacity() >= DEFAULT_BLOCK_SIZE, "{codec:?}");
        }
    }
    // One 8 MiB block of small uint16 values: its zero high-byte plane (4 MiB) is read from
    // the worker's zeros, which are not kept past the call either.
    let small: Vec<u8> = (0..4u64 << 20)
        .flat_map(|i| ((i % 200) as u16).to_le_bytes())
        .collect();
    let mut s = scratch(8 << 20, 1);
    round_trip(&small, Codec::Lz4, Filter::Shuffle { elem_size: 2 }, &mut s);
    let w = &s.workers(1)[0];
    assert!(
        w.zeros.capacity() <= blocks::KEPT_SCRATCH && w.shuf.capacity() <= blocks::KEPT_SCRATCH
    );
}
