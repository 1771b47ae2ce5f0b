// Matting scenes with a known answer, generated from a seed: the tests check matting against
// them and the trainer learns from them (modules/train), so neither needs data files.
//
// A scene is a soft-edged body (an ellipse over a rectangle) with thin semi-transparent strands
// leaving its centre, a smoothly shaded foreground colour over a sinusoidally textured
// background. The foreground varies along one colour direction and the background along
// another, so every small window satisfies the colour-line model closed-form matting assumes:
// on these scenes the matting error comes from the method, not from the scene.
#pragma once

#include <cstdint>

#include <opencv2/core/mat.hpp>

namespace semat::matting {

struct SyntheticScene {
  cv::Mat image;       ///< CV_8UC3 composite alpha F + (1 - alpha) B, rounded; the colours are
                       ///< arbitrary, so the channel order is whatever the caller takes it as
  cv::Mat alpha;       ///< CV_32F in [0, 1]: exactly 0 and 1 away from the edges and strands
  cv::Mat foreground;  ///< CV_32FC3 F in [0, 1]
  cv::Mat background;  ///< CV_32FC3 B (the composite saturates where the texture leaves [0, 1])
};

/// base + spread * u with u uniform in [0, 1): one scene parameter's distribution (spread 0
/// fixes it).
struct Uniform {
  double base = 0;
  double spread = 0;
  double at(double u) const { return base + spread * u; }
};

/// The distributions a scene's parameters are drawn from. Positions and lengths are fractions
/// of the image width (x) or height (y); widths of strands are in pixels at 4x resolution (the
/// scene is drawn 4x larger and area-downsampled for anti-aliased edges).
struct SceneVariety {
  Uniform centre_x, centre_y;          ///< body centre, fraction of width / height
  Uniform axis_x, axis_y;              ///< ellipse semi-axes, fraction of width / height
  Uniform angle;                       ///< ellipse rotation, degrees
  Uniform body_half_width;             ///< rectangle below the centre: half width, of width
  Uniform body_length;                 ///< ... and its length down from the centre, of height
  Uniform edge_blur;                   ///< Gaussian sigma softening the body's edge, pixels
  Uniform strand_count;                ///< int(base) + int(spread * u) strands
  Uniform strand_angle;                ///< radians, image axes (0 = right, -pi/2 = up)
  Uniform strand_length;               ///< from the centre, fraction of height
  Uniform strand_width;                ///< int(base) + int(spread * u) pixels at 4x
  Uniform strand_opacity;              ///< peak alpha of a strand, in (0, 1]
  Uniform foreground[3];               ///< base colour per channel in [0, 1], shaded 0.8..1
  Uniform background[3];               ///< base colour per channel in [0, 1], dimmed to 0.7
  Uniform texture[3];                  ///< texture amplitude per channel, added to 0.7 base
  Uniform texture_phase;               ///< radians
  Uniform texture_period_x, texture_period_y;  ///< pixels per radian of the sinusoids

  /// Random pose, shape, colours and texture: the trainer's scenes (data type "synthetic").
  static SceneVariety varied();
  /// An upright dark body near the centre with strands rising from it on a light textured
  /// background, fixed colours: every scene is easy to box and has a clear foreground / background
  /// contrast, so tests can hold matting to tight error bounds on any seed.
  static SceneVariety upright();
};

/// The scene number `seed` of `variety`, `size` pixels (width, height >= 8). Depends only on
/// (size, seed, variety): the same arguments always give the same pixels.
SyntheticScene synthesize_scene(cv::Size size, std::uint64_t seed, const SceneVariety& variety);

}  // namespace semat::matting
