//! `maskgate video` and video sources through the system ffmpeg: annotated output keeps size
//! and rate and drops audio, per-frame JSON, the kiosk playing a clip, and clear errors for a
//! missing ffmpeg and an unreadable file. Skips (with a message) where ffmpeg is not installed.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

fn have_ffmpeg() -> bool {
    let ok = Command::new("ffmpeg").arg("-version").output().is_ok()
        && Command::new("ffprobe").arg("-version").output().is_ok();
    if !ok {
        eprintln!("SKIPPED: ffmpeg / ffprobe not installed (sudo apt install ffmpeg)");
    }
    ok
}

/// A 1 s, 15 fps, 640x480 H.264 clip of the astronaut with a 440 Hz audio track.
fn clip(dir: &Path) -> PathBuf {
    let out = dir.join("clip.mp4");
    let st = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-loop", "1", "-i"])
        .arg(common::sample("astronaut.jpg"))
        .args(["-f", "lavfi", "-i", "sine=frequency=440:duration=1"])
        .args([
            "-vf",
            "scale=640:480",
            "-r",
            "15",
            "-t",
            "1",
            "-c:v",
            "libx264",
        ])
        .args(["-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest"])
        .arg(&out)
        .status()
        .unwrap();
    assert!(st.success());
    out
}

fn streams(f: &Path) -> Vec<String> {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-count_frames", "-show_entries"])
        .args(["stream=codec_type,codec_name,width,height,r_frame_rate,nb_read_frames"])
        .args(["-of", "compact=p=0:nk=1"])
        .arg(f)
        .output()
        .unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

fn video_cmd() -> Command {
    let mut c = common::maskgate_bin();
    c.arg("video")
        .arg("--threads")
        .arg(common::threads().to_string());
    c
}

#[test]
fn every_frame_annotated_rate_and_size_kept_audio_dropped() {
    if !have_ffmpeg() {
        return;
    }
    let d = common::scratch("video");
    let input = clip(&d);
    assert_eq!(streams(&input).len(), 2, "the test clip has audio");
    let out = d.join("annotated.mp4");
    let res = video_cmd()
        .arg("--in")
        .arg(&input)
        .arg("--out")
        .arg(&out)
        .arg("--json")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&res.stderr);
    assert!(res.status.success(), "{err}");
    let frames: Vec<serde_json::Value> = String::from_utf8(res.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(frames.len(), 15);
    for (i, f) in frames.iter().enumerate() {
        assert_eq!(f["frame"], i as u64);
        assert!((f["t"].as_f64().unwrap() - i as f64 / 15.0).abs() < 1e-3);
        assert_eq!(
            (f["width"].as_u64(), f["height"].as_u64()),
            (Some(640), Some(480))
        );
        let faces = f["faces"].as_array().unwrap();
        assert_eq!(faces.len(), 1, "frame {i}");
        assert_eq!(faces[0]["mask"], false);
    }
    // one H.264 video stream, same size, rate and frame count; no audio
    assert_eq!(
        streams(&out),
        vec!["h264|video|640|480|15/1|15".to_string()]
    );
    // the label above the box is drawn in red (no mask) on the first output frame
    let png = d.join("f0.png");
    let st = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-i"])
        .arg(&out)
        .args(["-frames:v", "1"])
        .arg(&png)
        .status()
        .unwrap();
    assert!(st.success());
    let img = image::open(&png).unwrap().to_rgb8();
    let b = frames[0]["faces"][0]["box"].as_array().unwrap();
    let (x1, y1) = (b[0].as_f64().unwrap() as u32, b[1].as_f64().unwrap() as u32);
    let mut px: Vec<[u8; 3]> = (x1 + 2..x1 + 60)
        .flat_map(|x| (y1 - 11..y1 - 1).map(move |y| (x, y)))
        .map(|(x, y)| img.get_pixel(x, y).0)
        .collect();
    px.sort_by_key(|p| p[0] as i32 - p[1] as i32);
    let median = px[px.len() / 2];
    assert!(
        median[0] > 150 && median[1] < 90 && median[2] < 90,
        "label colour {median:?}"
    );
    assert!(err.contains("15 frames"), "{err}");
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn the_kiosk_plays_a_clip_at_its_own_rate() {
    if !have_ffmpeg() {
        return;
    }
    let d = common::scratch("video-kiosk");
    let input = clip(&d);
    let res = common::maskgate_bin()
        .args([
            "run",
            "--simulate",
            "--threads",
            &common::threads().to_string(),
        ])
        .arg("--source")
        .arg(&input)
        .args(["--fps", "2"]) // ignored for a video: its own 15 fps apply
        .output()
        .unwrap();
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    let text = String::from_utf8(res.stdout).unwrap();
    assert!(
        text.contains(r#"{"event":"decision","t_ms":133,"decision":"no_mask""#),
        "{text}"
    );
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn missing_ffmpeg_and_unreadable_files_are_clear_errors() {
    let d = common::scratch("video-bad");
    let junk = d.join("junk.mp4");
    std::fs::write(&junk, b"this is not a video at all").unwrap();
    let res = video_cmd()
        .arg("--in")
        .arg(&junk)
        .env("PATH", d.join("empty-bin"))
        .output()
        .unwrap();
    assert_eq!(res.status.code(), Some(1));
    let err = String::from_utf8_lossy(&res.stderr);
    assert!(err.contains("sudo apt install ffmpeg"), "{err}");
    if have_ffmpeg() {
        let res = video_cmd().arg("--in").arg(&junk).output().unwrap();
        assert_eq!(res.status.code(), Some(1));
        let err = String::from_utf8_lossy(&res.stderr);
        assert!(err.contains("not a video ffmpeg can read"), "{err}");
    }
    let _ = std::fs::remove_dir_all(&d);
}

/// A 4 s, 15 fps moving test pattern, moov first: cut short, it still opens and decodes part-way.
fn pattern_clip(dir: &Path) -> PathBuf {
    let out = dir.join("pattern.mp4");
    let st = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg("testsrc=size=320x240:rate=15")
        .args(["-t", "4", "-c:v", "libx264", "-pix_fmt", "yuv420p"])
        .args(["-movflags", "+faststart"])
        .arg(&out)
        .status()
        .unwrap();
    assert!(st.success());
    out
}

fn frame_count(f: &Path) -> u64 {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-count_frames", "-select_streams", "v:0"])
        .args(["-show_entries", "stream=nb_read_frames", "-of", "csv=p=0"])
        .arg(f)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

#[test]
fn the_input_is_never_overwritten_and_an_unwritable_output_is_refused_first() {
    if !have_ffmpeg() {
        return;
    }
    let d = common::scratch("video-same");
    let input = pattern_clip(&d);
    let before = std::fs::read(&input).unwrap();
    // the same file under another spelling
    let same = d.join(".").join("pattern.mp4");
    let res = video_cmd()
        .arg("--in")
        .arg(&input)
        .arg("--out")
        .arg(&same)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&res.stderr);
    assert_eq!(res.status.code(), Some(2), "{err}");
    assert!(err.contains("is the input video"), "{err}");
    assert_eq!(std::fs::read(&input).unwrap(), before, "input changed");

    let res = video_cmd()
        .arg("--in")
        .arg(&input)
        .arg("--out")
        .arg(d.join("no-such-folder/out.mp4"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&res.stderr);
    assert_eq!(res.status.code(), Some(1), "{err}");
    assert!(
        err.contains("cannot write") && err.contains("no-such-folder/out.mp4"),
        "{err}"
    );
    // said before any decoding: no progress line, no "Broken pipe"
    assert!(
        !err.contains("frames") && !err.contains("Broken pipe"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn undecodable_and_truncated_videos_are_reported() {
    if !have_ffmpeg() {
        return;
    }
    let d = common::scratch("video-damaged");
    let good = pattern_clip(&d);
    let bytes = std::fs::read(&good).unwrap();
    assert_eq!(frame_count(&good), 60);

    // every byte of the frame data zeroed: the container opens, no frame decodes
    let mut zeroed = bytes.clone();
    let mdat = zeroed.windows(4).position(|w| w == b"mdat").unwrap();
    zeroed[mdat + 4..].fill(0);
    let zero = d.join("zeroed.mp4");
    std::fs::write(&zero, &zeroed).unwrap();
    let out = d.join("zeroed-out.mp4");
    let res = video_cmd()
        .arg("--in")
        .arg(&zero)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&res.stderr);
    assert_eq!(res.status.code(), Some(1), "{err}");
    assert!(err.contains("no decodable video frame"), "{err}");
    // nothing written, not even the partial file
    let left: Vec<_> = std::fs::read_dir(&d)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("zeroed-out"))
        .collect();
    assert!(left.is_empty(), "{left:?}");

    // cut at 60 %: part of the frames decode, ffmpeg itself exits 0
    let cut = d.join("cut.mp4");
    std::fs::write(&cut, &bytes[..bytes.len() * 6 / 10]).unwrap();
    let out = d.join("cut-out.mp4");
    let res = video_cmd()
        .arg("--in")
        .arg(&cut)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&res.stderr);
    assert_eq!(res.status.code(), Some(3), "{err}");
    let n = frame_count(&out);
    assert!((1..60).contains(&n), "{n} frames written");
    assert!(
        err.contains(&format!("only {n} of the 60 frames")) && err.contains("truncated"),
        "{err}"
    );
    assert!(err.contains("partial file"), "ffmpeg's words: {err}");
    let _ = std::fs::remove_dir_all(&d);
}
