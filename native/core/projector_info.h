#pragma once
// The one field list of ProjectorInfo: the C++ struct below and the object the addon's info()
// returns are both made from it, and the addon exports the names (projectorInfoFields) so that a
// test checks the TypeScript interface (src/bindings/projector.ts) lists the same fields.
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

namespace vl {

// X(type, C++ name, JavaScript name)
#define VL_PROJECTOR_INFO_FIELDS(X)                                                                  \
  X(int, llm_width, llmWidth)                  /* width of the produced embeddings */                \
  X(uint32_t, file_type, fileType)             /* general.file_type */                               \
  X(bool, has_vision, hasVision)                                                                     \
  X(bool, has_audio, hasAudio)                                                                       \
  X(int, image_size, imageSize)                /* vision */                                          \
  X(int, video_queries, videoQueries)                                                                \
  X(int, max_frames, maxFrames)                                                                      \
  X(Rgb, image_mean, imageMean)                                                                      \
  X(Rgb, image_std, imageStd)                                                                        \
  X(int, audio_queries, audioQueries)          /* audio */                                           \
  X(int, max_clips, maxClips)                                                                        \
  X(int, sample_rate, sampleRate)                                                                    \
  X(int, mel_bins, melBins)                                                                          \
  X(int, target_frames, targetFrames)                                                                \
  X(float, clip_seconds, clipSeconds)                                                                \
  X(float, fbank_mean, fbankMean)                                                                    \
  X(float, fbank_std, fbankStd)                                                                      \
  X(std::string, backend, backend)             /* name of the backend the graphs run on */           \
  X(int, own_kernel_layers, ownKernelLayers)   /* linear layers packed for our kernels */            \
  X(size_t, weight_bytes, weightBytes)         /* the weights buffer */

using Rgb = std::array<float, 3>;

// Sizes and constants read from the file, for callers that prepare inputs.
struct ProjectorInfo {
#define VL_INFO_MEMBER(type, name, js) type name{};
  VL_PROJECTOR_INFO_FIELDS(VL_INFO_MEMBER)
#undef VL_INFO_MEMBER
};

}  // namespace vl
