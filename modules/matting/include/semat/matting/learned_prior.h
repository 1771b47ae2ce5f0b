// The learned box pipeline's classical half: a segmentation network's probability map for a box
// (IS-Net run on the box crop plus a margin) is fused with the box and a colour model into a
// coarse mask, turned into a trimap whose unknown band follows the network's uncertainty and the
// image's edges, and solved by closed-form matting with the probability as a weak prior.
//
//   const cv::Rect crop = prior_crop(image.size(), box);          // what the network sees
//   cv::Mat p = network(image(crop));                             // CV_32F, crop.size(), [0, 1]
//   MatteResult r = matte_from_prior(image, box, p, crop);
//
// Why not the paper's area rule (TrimapParams): omega = sqrt(area / 12) was made for turning
// accurate masks into dataset trimaps; around a rough mask of a large subject it opens an 80+ px
// band over flat background, and closed-form fills it with grey fog. Here a pixel is unknown
// only where the network is unsure, where it lies within a few pixels of the mask's edge, or
// where the image has edges (hair, fur) a little farther out; confident background elsewhere is
// exactly 0.
#pragma once

#include <string>

#include <opencv2/core/mat.hpp>

#include "semat/core/channel_order.h"
#include "semat/core/geometry.h"
#include "semat/matting/pipeline.h"

namespace semat::matting {

struct LearnedPriorParams {
  /// The network's crop is the box grown on every side by this fraction of its longer side
  /// (then clipped to the image): context for the network, and room for the band outside.
  double margin_fraction = 0.1;
  /// On sides where the image ends before that margin, the network's input is the crop mirrored
  /// outwards to this fraction of the box's longer side (0: no padding). See prior_padding.
  double clipped_margin_fraction = 0.25;
  /// The network is unsure where lo < p < hi; confident foreground is p >= hi, background p <= lo.
  double lo = 0.1, hi = 0.9;
  /// Wrong-object check: a box drawn around a subject touches it on all four sides. A side counts
  /// as touched when the mask (for the network's, also any p > side_evidence) comes within max(2 px, this
  /// fraction of the box's extent across that side) of it.
  double side_reach_fraction = 0.1;
  /// For the network's mask in that check, pixels with p above this count as subject too (a
  /// tight box reaches the faintest hair or fur, where a right map can be under 0.5). On the dev
  /// data 0.1 let a half-seen second flower pass the check; 0.5 (the mask before GrabCut) did not.
  double side_evidence = 0.5;
  /// When the network's mask misses a side, it and two GrabCut masks compete (see fuse_prior):
  /// score = colour separation (Bhattacharyya distance of the colour histograms inside and
  /// outside the mask over the crop, [0, 1]) + side_bonus per box side the mask touches. On the
  /// dev data any bonus in about (0.045, 0.08) picks the same masks; below, a second object the
  /// network missed loses to the network's one; above, GrabCut's masks that fill a tight box win.
  double side_bonus = 0.06;
  /// A candidate whose IoU with the network's mask is at least this does not replace it (one
  /// subject seen twice: the network's mask keeps its edges).
  double agree_iou = 0.85;
  /// The seeded GrabCut candidate takes p below this, inside the box, as probable background.
  /// Dev data, mean SAD: 0.01 -> 17.44, 0.02 -> 16.93, 0.035 -> 16.79, 0.05 -> 16.75,
  /// 0.07 -> 16.38, 0.1 -> 22.42 (two crops flip). The middle of the flat stretch: at 0.02 the
  /// bf16 map's differences from float32 (up to 0.02) moved one crop's seeds (16.7 -> 26.1).
  double seed_background = 0.05;
  /// GrabCut iterations, both where it settles the unsure pixels and in the fallback; it runs on
  /// a copy whose long side is at most grabcut_max_side.
  int grabcut_iterations = 3;
  int grabcut_max_side = 640;
  /// Pieces of the mask smaller than this fraction of its largest piece are dropped.
  double min_piece_fraction = 0.02;
  /// Unknown band, as fractions of the box diagonal (each at least 1.5 px): everywhere within
  /// edge_band of the mask's edge; within edge_reach where the image has an edge; within
  /// unsure_reach where the network is unsure.
  double edge_band_fraction = 0.006;
  double edge_reach_fraction = 0.05;
  /// unsure_reach was 0.08 before the band learned to grow (regrow_passes); with it, a narrower
  /// start is better (dev data, mean whole-image SAD with the other defaults: 0.12 -> 17.03,
  /// 0.08 -> 16.81, 0.05 -> 16.65, 0.035 -> 16.59, 0.02 -> 16.62): a wide unsure reach greys
  /// the faint halo the network paints around smooth edges (alphamatting GT01 5.2 -> 2.9).
  double unsure_reach_fraction = 0.035;
  /// Gradient magnitude (Sobel of the grey image in [0, 1], per pixel) that counts as an edge.
  double edge_threshold = 0.12;
  /// In the trimap, a pixel within unsure_reach of the mask counts as unsure from p > faint on
  /// (not only from lo): semi-transparent things (glass, lace, the tips of hair) get a faint but
  /// nonzero map, and marking them definite background is an error closed-form cannot undo.
  /// Dev data, mean whole-image SAD (rough_band_fraction 0.04): 0.1 (= lo, off) -> 17.40,
  /// 0.05 -> 17.36, 0.02 -> 17.33 (better on 6 images, e.g. Composition-1k 2 13.0 -> 12.6, 7 3.6
  /// -> 3.2, alphamatting GT02 2.19 -> 2.02; worse on 3, e.g. crop 5 1.02 -> 1.37).
  double faint = 0.02;
  /// Definite pixels enclosed by the band within this fraction of the box diagonal (a morphological
  /// closing of the unknown region) become unknown too: the background between strands of hair
  /// or fur. 0: off. Off by default: 0.01 -> 17.51 on the dev data (helps GT03/GT04, greys
  /// smooth edges: GT01, GT02, GT05).
  double fill_fraction = 0.0;
  /// edge_band_fraction for a mask GrabCut drew (fuse_prior's source is not "prior"): its edge
  /// follows colour, not the subject, and the network's map (which did not pick that mask) says
  /// nothing about where it is unsure, so only a wider band lets closed-form find the real edge.
  /// Dev data (tight box, mean whole-image SAD): 0.006 -> 17.79, 0.02 -> 17.57, 0.04 -> 17.40,
  /// 0.06 -> 17.45; it changes only the 8 of 15 images whose mask GrabCut drew (GT04 26.4 ->
  /// 21.6, Composition-1k 3 16.7 -> 15.4, 7 4.6 -> 3.6; alphamatting GT01 3.3 -> 5.0).
  /// Since the band also takes in where mask and network disagree (disagree_reach_fraction) and
  /// grows where it cut a transition (regrow_passes), 0.03 is better: 0.055 -> 16.93, 0.04 ->
  /// 16.81, 0.03 -> 16.77 (unsure_reach 0.08).
  double rough_band_fraction = 0.03;
  /// Weight of the probability as closed-form's data prior in the band (ClosedFormParams::prior_weight).
  /// Kept weak: the network's map is blurrier than fur or hair, and a stronger pull towards it
  /// greys them (dev data, mean whole-image SAD: 0.01 -> 17.14, 0.001 -> 16.97, 0.0003 -> 16.93,
  /// 0 -> 16.87; Composition-1k crop 5 2.02 / 1.59 / 1.36 / 1.04 against GrabCut's 1.24). Not 0: the
  /// map still settles the band's flat regions (alphamatting GT02: 1.34 / 2.19 at 0.0003 / 2.78 at 0).
  double prior_weight = 0.0003;
  /// After the solve, a pixel on the band's outer edge whose alpha stays more than regrow_gap
  /// away from the definite label next to it shows that the band cut through a transition (hair
  /// longer than the band, a shadow of the edge the mask missed): the definite pixels within
  /// regrow_fraction of the box diagonal of such pixels become unknown and the band is solved
  /// again, at most regrow_passes times. 0 passes: off. Dev data, mean whole-image SAD (before
  /// disagree_reach and the narrower reaches): off 17.33; 1 pass, gap 0.15/0.1/0.05 with
  /// fraction 0.03: 17.21/17.17/17.13; 2 passes, gap 0.1: fraction 0.02 17.21, 0.04 17.07, 0.08
  /// 17.12 (alphamatting GT03, long strands past the band: 12.2 -> 8.4; smooth edges lose a
  /// little, GT05 1.04 -> 1.38); 3 passes as 2. With the other defaults: 2 passes, fraction
  /// 0.04 -> 16.59; 1 pass, 0.06 -> 16.62. Each pass solves the band again, and a grown band
  /// costs more (GT03 0.8-1.1 s -> 3.2-3.9 s, GT04 7.5-8.3 s -> 11.5 s), so one pass.
  int regrow_passes = 1;
  double regrow_gap = 0.1;
  double regrow_fraction = 0.06;
  /// Pixels within this fraction of the box diagonal of the mask's edge where the mask and the
  /// network disagree (mask set but p < 0.5, or the reverse) are unknown. 0: off. It matters for
  /// masks GrabCut drew (with the network's own mask only its GrabCut-settled pixels disagree):
  /// dev data, 0 -> 17.33, 0.05 -> 17.29, 0.15 -> 17.06, 0.3 and 1.0 -> 17.05 (the glass of
  /// Composition-1k 1: 24.5 -> 21.8; the white flowers GrabCut took with white fur, crop 3:
  /// 15.4 -> 14.9).
  double disagree_reach_fraction = 0.15;
};

/// The crop the network should see for `box`: the box grown by margin_fraction of its longer side
/// on every side, clipped to the image. `box` must lie inside the image.
cv::Rect prior_crop(cv::Size image, const Box& box, double margin_fraction = LearnedPriorParams{}.margin_fraction);

/// Pixels of mirrored padding the network's input gets on each side of `crop` (left, top, right,
/// bottom): zero where the crop already has its margin; on a side where the image cut it short,
/// enough for clipped_fraction of the box's longer side beyond the box, at most the crop's own
/// extent minus one (what BORDER_REFLECT101 can mirror).
cv::Vec4i prior_padding(cv::Size image, const Box& box, const cv::Rect& crop, double clipped_fraction);

struct FusedMask {
  cv::Mat mask;         ///< CV_8U 0/255, the image's size, zero outside the box
  cv::Mat probability;  ///< CV_32F in [0, 1], the image's size: the network's map, 0 outside the crop
  int sides_touched = 0;  ///< of the box's four sides, by `mask` (see side_reach_fraction)
  /// "prior" (the network's mask, its unsure pixels settled by GrabCut), "prior+grabcut" (GrabCut
  /// on the box plus the network's pieces it overlaps) or "prior+seeded-grabcut" (GrabCut seeded
  /// by the network's confident background): see fuse_prior.
  std::string source;
};

/// Places `probability` (CV_32F in [0, 1], crop.size(); other float types are converted) into the
/// image, and makes the coarse mask: p >= 0.5 inside the box, with the unsure pixels (lo < p < hi)
/// decided by GrabCut's colour model seeded by the confident ones. When that mask leaves a side of
/// the box untouched (a salient but wrong object: the pot without its plant, one flower of two),
/// GrabCut on the box (plus the network's pieces it overlaps) and GrabCut seeded by the network's
/// confident background compete with it; the mask that best separates the crop's colours, with a
/// bonus per box side touched, wins (LearnedPriorParams::side_bonus). `image`: CV_8UC3; `box` and
/// `crop` inside it. Throws InvalidArgument for mismatched sizes, DataError when nothing is found.
FusedMask fuse_prior(const cv::Mat& image, const Box& box, const cv::Mat& probability,
                     const cv::Rect& crop, const LearnedPriorParams& params = {});

/// The band trimap described at the top. `probability`: CV_32F of the image's size; `mask`:
/// CV_8U (nonzero = subject) of the image's size, not empty. Always has foreground (the mask's
/// innermost pixels when the band would swallow it) and, unless the whole image is within the
/// band, background. `order`: the channel order of `image` (its edges are those of its grey
/// image, whose weights differ by channel).
cv::Mat prior_trimap(const cv::Mat& image, const cv::Mat& probability, const cv::Mat& mask,
                     const Box& box, const LearnedPriorParams& params = {},
                     ChannelOrder order = ChannelOrder::kBGR);

/// prior_trimap for fuse_prior's result: a mask GrabCut drew (source other than "prior") gets
/// the band of rough_band_fraction (when wider than edge_band_fraction).
cv::Mat prior_trimap(const cv::Mat& image, const FusedMask& fused, const Box& box,
                     const LearnedPriorParams& params = {}, ChannelOrder order = ChannelOrder::kBGR);

/// The soft prior closed-form gets in the band: the probability where it agrees with the mask
/// (p >= 0.5 exactly where the mask is set), the mask (0 or 1) where it does not. CV_32F [0, 1].
cv::Mat prior_hint(const cv::Mat& probability, const cv::Mat& mask);

/// Closed-form alpha in `trimap`'s band with `hint` (CV_32F [0, 1], may be empty) as the data
/// prior of weight `weight`, then foreground colours; fills r.alpha, r.foreground, r.solve.
/// Honours options.crop_margin as solve_in_trimap does.
void solve_with_hint(const cv::Mat& image, const cv::Mat& trimap, const cv::Mat& hint, double weight,
                     const MatteOptions& options, MatteResult& r);

/// solve_with_hint, then the band grown where it cut a transition and solved again (see
/// LearnedPriorParams::regrow_passes); r.trimap is the trimap last solved.
void solve_prior_band(const cv::Mat& image, const cv::Mat& trimap, const cv::Mat& hint, const Box& box,
                      const LearnedPriorParams& params, const MatteOptions& options, MatteResult& r);

/// The whole learned box pipeline: fuse_prior -> prior_trimap -> solve_prior_band. `image` in
/// `order` (the foreground comes out in it).
MatteResult matte_from_prior(const cv::Mat& image, const Box& box, const cv::Mat& probability,
                             const cv::Rect& crop, const MatteOptions& options = {},
                             const LearnedPriorParams& params = {}, ChannelOrder order = ChannelOrder::kBGR);

}  // namespace semat::matting
