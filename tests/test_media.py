import numpy as np
import pytest

from toolkit.media import MediaError, choose_audio_stream, load_media, probe

from .conftest import SAMPLES


def test_probe_and_extract_sample():
    info, audio = load_media(SAMPLES / "confession_mixed.mp4")
    assert {s.codec_type for s in info.streams} == {"video", "audio"}
    assert info.audio_stream == 0
    assert len(info.sha256) == 64
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert abs(audio.size / 16000 - 71.0) < 0.2  # 16 kHz mono, the whole file
    assert 0.01 < np.abs(audio).max() <= 1.0


def test_audio_file_input(tmp_path):
    import subprocess

    from toolkit.media import ffmpeg_executable

    wav = tmp_path / "clip.wav"
    subprocess.run([ffmpeg_executable(), "-loglevel", "error", "-i", str(SAMPLES / "azeri_music.mp4"),
                    "-t", "3", "-ac", "2", "-ar", "44100", str(wav)], check=True)
    info, audio = load_media(wav)
    assert [s.codec_type for s in info.streams] == ["audio"]
    assert abs(audio.size / 16000 - 3.0) < 0.05


@pytest.mark.parametrize("name, reason", [
    ("text", "not a media file"), ("empty", "empty file"), ("silent", "no audio stream"),
    ("truncated", "not a media file"),
])
def test_bad_inputs_give_one_line_errors(bad_inputs, name, reason):
    with pytest.raises(MediaError) as err:
        load_media(bad_inputs[name])
    message = str(err.value)
    assert str(bad_inputs[name]) in message and reason in message and "\n" not in message


def test_missing_file(tmp_path):
    with pytest.raises(MediaError, match="no such file"):
        probe(tmp_path / "nope.mp4")


def test_audio_stream_choice():
    info = probe(SAMPLES / "azeri_music.mp4")
    assert choose_audio_stream(info) == 0
    with pytest.raises(MediaError, match="--audio-stream 3 does not exist"):
        choose_audio_stream(info, 3)


def test_second_audio_stream_and_default_flag(tmp_path):
    """A file with two audio tracks: the default-flagged one is taken unless --audio-stream says otherwise."""
    import subprocess

    from toolkit.media import ffmpeg_executable

    path = tmp_path / "two tracks.mkv"
    subprocess.run([ffmpeg_executable(), "-loglevel", "error", "-i", str(SAMPLES / "azeri_music.mp4"),
                    "-f", "lavfi", "-i", "sine=frequency=440:duration=5", "-map", "0:v", "-map", "1:a", "-map", "0:a",
                    "-t", "5", "-c:v", "copy", "-c:a", "aac", "-disposition:a:0", "0", "-disposition:a:1", "default",
                    str(path)], check=True)
    info, default_audio = load_media(path)
    assert [s.codec_type for s in info.streams] == ["video", "audio", "audio"]
    assert info.audio_stream == 1  # the default-flagged track, not the first
    sine_info, sine = load_media(path, audio_stream=0)
    assert sine_info.audio_stream == 0
    # a pure tone is periodic: its spectrum is one peak at 440 Hz; speech with music is not
    peak_hz = np.argmax(np.abs(np.fft.rfft(sine[:16000])))  # one second at 16 kHz: 1 Hz bins
    assert abs(peak_hz - 440) < 5
    assert not np.allclose(sine[:16000], default_audio[:16000], atol=1e-3)
