//! Writing video: (N, H, W, 3) RGB frames encoded (H.264 through libx264,
//! VP9, AV1 or MPEG-4, whichever the FFmpeg build has), with an optional
//! audio track, muxed into the container the destination's extension (or
//! [`WriterConfig::format`]) names (MP4, MKV, WebM...), written to a file,
//! to memory or to object storage. Frames stream through: memory holds one
//! chunk, the encoder's lookahead and the muxer's interleaving queue, never
//! the whole video.

use ffmpeg_next as ff;
use ndarray::{ArrayView2, ArrayView4};

use crate::error::Result;
use crate::media::encode::{find_encoder, AudioEncoder, Muxer, VideoEncoder, VideoSettings};
use crate::source::Destination;

/// How [`VideoWriter`] encodes. Every field has a default; setters chain.
///
/// ```
/// let config = spdl_io::video::WriterConfig::new(30, 1).with_codec("libvpx-vp9").with_option("crf", "30");
/// assert_eq!(config.codec, "libvpx-vp9");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct WriterConfig {
    /// Frames per second, as `num / den`.
    pub fps: (i32, i32),
    /// FFmpeg's encoder name (default `libx264`; `libvpx-vp9`,
    /// `libaom-av1`, `mpeg4`...).
    pub codec: String,
    /// Encoded pixel format (default `yuv420p`, which every player reads).
    pub pix_fmt: String,
    /// Encoder options, as `ffmpeg -crf 23 -preset fast` takes them.
    pub options: Vec<(String, String)>,
    /// The container by FFmpeg's muxer name (`mp4`, `matroska`, `webm`);
    /// default: the one the destination's extension implies.
    pub format: Option<String>,
    /// Muxer options (`movflags=+faststart` for a file). An MP4 written to
    /// object storage, which cannot seek, is fragmented
    /// (`movflags=frag_keyframe+empty_moov+default_base_moof`) unless
    /// `movflags` is set here.
    pub muxer_options: Vec<(String, String)>,
    /// An audio track: (sample rate, channels); none by default.
    pub audio: Option<(u32, u32)>,
    /// The audio encoder by FFmpeg's name; default: the container's own
    /// (AAC for MP4, Opus or Vorbis for WebM/MKV).
    pub audio_codec: Option<String>,
}

impl WriterConfig {
    /// H.264 (libx264) in yuv420p at `num / den` frames per second.
    pub fn new(num: i32, den: i32) -> Self {
        WriterConfig {
            fps: (num, den),
            codec: "libx264".into(),
            pix_fmt: "yuv420p".into(),
            options: Vec::new(),
            format: None,
            muxer_options: Vec::new(),
            audio: None,
            audio_codec: None,
        }
    }
    /// Sets the encoder by FFmpeg's name.
    #[must_use]
    pub fn with_codec(mut self, codec: impl Into<String>) -> Self {
        self.codec = codec.into();
        self
    }
    /// Sets the encoded pixel format.
    #[must_use]
    pub fn with_pix_fmt(mut self, pix_fmt: impl Into<String>) -> Self {
        self.pix_fmt = pix_fmt.into();
        self
    }
    /// Adds an encoder option.
    #[must_use]
    pub fn with_option(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.options.push((key.into(), value.into()));
        self
    }
    /// Sets the container by FFmpeg's muxer name.
    #[must_use]
    pub fn with_format(mut self, format: impl Into<String>) -> Self {
        self.format = Some(format.into());
        self
    }
    /// Adds a muxer option.
    #[must_use]
    pub fn with_muxer_option(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.muxer_options.push((key.into(), value.into()));
        self
    }
    /// Adds an audio track of `channels` at `rate` Hz, written with
    /// [`VideoWriter::write_audio`].
    #[must_use]
    pub fn with_audio(mut self, rate: u32, channels: u32) -> Self {
        self.audio = Some((rate, channels));
        self
    }
    /// Sets the audio track's encoder by FFmpeg's name.
    #[must_use]
    pub fn with_audio_codec(mut self, codec: impl Into<String>) -> Self {
        self.audio_codec = Some(codec.into());
        self
    }
}

/// A video being written: frames (and audio samples) in, encoded and
/// muxed as they come.
///
/// ```no_run
/// use spdl_io::video::{VideoWriter, WriterConfig};
/// let frames = ndarray::Array4::<u8>::zeros((30, 240, 320, 3));
/// let samples = ndarray::Array2::<f32>::zeros((2, 48_000));
/// let config = WriterConfig::new(30, 1).with_audio(48_000, 2);
/// let mut writer = VideoWriter::create("out.mp4", 320, 240, &config)?;
/// writer.write(frames.view())?;
/// writer.write_audio(samples.view())?;
/// writer.finish()?;
/// # Ok::<(), spdl_io::Error>(())
/// ```
pub struct VideoWriter {
    video: VideoEncoder,
    audio: Option<AudioEncoder>,
    muxer: Muxer,
}

impl VideoWriter {
    /// Creates `dest` (a path, [`Destination::memory`], or an object URL)
    /// for frames of `width` x `height`.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`](crate::Error::InvalidConfig) for an encoder
    /// this FFmpeg build lacks (the message names it), an unknown pixel
    /// format or container, an odd size for a 4:2:0 format or a bad frame
    /// rate; [`Error::Write`](crate::Error::Write) when the destination
    /// cannot be created.
    pub fn create(dest: impl Into<Destination>, width: u32, height: u32, config: &WriterConfig) -> Result<Self> {
        crate::ffmpeg::init();
        let mut muxer = Muxer::create(&dest.into(), config.format.as_deref())?;
        let settings = VideoSettings {
            width,
            height,
            fps: config.fps,
            codec: &config.codec,
            pix_fmt: &config.pix_fmt,
            options: &config.options,
        };
        let video = VideoEncoder::open(&mut muxer, &settings)?;
        let audio = match config.audio {
            Some((rate, channels)) => {
                let codec = match &config.audio_codec {
                    Some(name) => find_encoder(&muxer, name)?,
                    None => default_audio_encoder(&muxer)?,
                };
                Some(AudioEncoder::open(&mut muxer, codec, rate, channels)?)
            }
            None => None,
        };
        muxer.write_header(&config.muxer_options)?;
        Ok(VideoWriter { video, audio, muxer })
    }

    /// Encodes (N, H, W, 3) RGB frames, in order.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`](crate::Error::InvalidConfig) for frames of
    /// another size or channel count; [`Error::Encode`](crate::Error::Encode)
    /// or [`Error::Write`](crate::Error::Write) when encoding or writing
    /// fails.
    pub fn write(&mut self, frames: ArrayView4<'_, u8>) -> Result<()> {
        self.video.write(&mut self.muxer, frames)
    }

    /// Encodes (channels, samples) float32 samples of the audio track, in
    /// order. Video and audio may be written in any order of calls; the
    /// muxer interleaves them by time.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`](crate::Error::InvalidConfig) when the
    /// writer has no audio track or for another channel count; as
    /// [`VideoWriter::write`] otherwise.
    pub fn write_audio(&mut self, samples: ArrayView2<'_, f32>) -> Result<()> {
        match self.audio.as_mut() {
            Some(audio) => audio.write(&mut self.muxer, samples),
            None => Err(self
                .muxer
                .bad("this writer has no audio track (WriterConfig::with_audio)")),
        }
    }

    /// Flushes the encoders and writes the trailer: the file is complete,
    /// the object uploaded. Returns the bytes for an in-memory
    /// destination. Dropping a writer without calling it leaves an
    /// unfinished file (and aborts an upload).
    ///
    /// # Errors
    /// As [`VideoWriter::write`].
    pub fn finish(mut self) -> Result<Option<Vec<u8>>> {
        self.video.finish(&mut self.muxer)?;
        if let Some(audio) = self.audio.as_mut() {
            audio.finish(&mut self.muxer)?;
        }
        self.muxer.finish()
    }
}

/// The audio encoder the container uses by default.
fn default_audio_encoder(muxer: &Muxer) -> Result<ff::Codec> {
    let id = muxer.default_codec(ff::media::Type::Audio);
    ff::encoder::find(id)
        .filter(|_| id != ff::codec::Id::None)
        .ok_or_else(|| muxer.bad(format!("no audio encoder for this container ({id:?}); name one")))
}
