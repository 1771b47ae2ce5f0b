#include "semat/matting/learned_prior.h"

#include <algorithm>
#include <cmath>

#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include "semat/core/error.h"
#include "semat/core/log.h"
#include "semat/core/timer.h"
#include "semat/matting/coarse_mask.h"
#include "semat/matting/trimap.h"

namespace semat::matting {
namespace {

// How many of the box's four sides `mask` (zero outside the box) comes near.
int sides_touched(const cv::Mat& mask, const cv::Rect& r, double reach_fraction) {
  if (cv::countNonZero(mask(r)) == 0) return 0;
  const int dy = std::min(r.height, std::max(2, static_cast<int>(std::lround(reach_fraction * r.height))));
  const int dx = std::min(r.width, std::max(2, static_cast<int>(std::lround(reach_fraction * r.width))));
  int n = 0;
  n += cv::countNonZero(mask(cv::Rect(r.x, r.y, r.width, dy))) > 0;
  n += cv::countNonZero(mask(cv::Rect(r.x, r.y + r.height - dy, r.width, dy))) > 0;
  n += cv::countNonZero(mask(cv::Rect(r.x, r.y, dx, r.height))) > 0;
  n += cv::countNonZero(mask(cv::Rect(r.x + r.width - dx, r.y, dx, r.height))) > 0;
  return n;
}

// GrabCut on `labels` (GC_* values, the image's size) inside `roi`, at most max_side on the long
// side; returns the CV_8U 0/255 foreground of the image's size (zero outside roi), or an empty
// Mat when the labels give one of the colour models no pixels to learn from.
cv::Mat grabcut_labels(const cv::Mat& image, const cv::Mat& labels, const cv::Rect& roi, int iterations,
                       int max_side) {
  const cv::Mat lab = labels(roi);
  const int fg = cv::countNonZero((lab == cv::GC_FGD) | (lab == cv::GC_PR_FGD));
  const int bg = cv::countNonZero((lab == cv::GC_BGD) | (lab == cv::GC_PR_BGD));
  // GMMs of 5 components each need a few pixels per component.
  if (fg < 50 || bg < 50) return {};
  const double scale = std::min(1.0, static_cast<double>(max_side) / std::max(roi.width, roi.height));
  cv::Mat work = image(roi), gc = lab.clone();
  if (scale < 1.0) {
    cv::resize(image(roi), work, {}, scale, scale, cv::INTER_AREA);
    cv::resize(lab, gc, work.size(), 0, 0, cv::INTER_NEAREST);
  }
  // Reproducible k-means seeding (see grabcut_mask).
  cv::theRNG().state = 0x5e3a7u;
  cv::Mat bgd, fgd;
  try {
    cv::grabCut(work, gc, cv::Rect(), bgd, fgd, iterations, cv::GC_INIT_WITH_MASK);
  } catch (const cv::Exception& e) {
    SEMAT_LOG_DEBUG("prior", "GrabCut skipped: " << e.err);
    return {};
  }
  cv::Mat fgm = (gc == cv::GC_FGD) | (gc == cv::GC_PR_FGD);
  if (scale < 1.0) {
    cv::Mat up;
    cv::resize(fgm, up, roi.size(), 0, 0, cv::INTER_LINEAR);
    fgm = up >= 128;
    // Decisions the labels forced stay exact at full resolution.
    fgm.setTo(255, lab == cv::GC_FGD);
    fgm.setTo(0, lab == cv::GC_BGD);
  }
  cv::Mat out = cv::Mat::zeros(image.size(), CV_8U);
  fgm.copyTo(out(roi));
  return out;
}

// How well `mask` splits the colours of `region` from the rest of it: the Bhattacharyya distance
// between the two colour histograms (8 bins a channel), in [0, 1], 1 = no colour shared. A mask
// that follows the subject separates colours better than one that cut the subject or took in
// background; 0 when either side is empty.
double colour_separation(const cv::Mat& image, const cv::Mat& mask, const cv::Rect& region) {
  const cv::Mat img = image(region), in = mask(region) != 0, out = mask(region) == 0;
  if (cv::countNonZero(in) == 0 || cv::countNonZero(out) == 0) return 0;
  const int channels[] = {0, 1, 2};
  const int bins[] = {8, 8, 8};
  const float range[] = {0, 256};
  const float* ranges[] = {range, range, range};
  cv::Mat h_in, h_out;
  cv::calcHist(&img, 1, channels, in, h_in, 3, bins, ranges);
  cv::calcHist(&img, 1, channels, out, h_out, 3, bins, ranges);
  return cv::compareHist(h_in, h_out, cv::HISTCMP_BHATTACHARYYA);
}

}  // namespace

cv::Rect prior_crop(cv::Size image, const Box& box, double margin_fraction) {
  check_box_in_image(box, image.width, image.height);
  const cv::Rect r = box.pixel_rect();
  const int m = static_cast<int>(std::lround(std::max(0.0, margin_fraction) * std::max(r.width, r.height)));
  return cv::Rect(r.x - m, r.y - m, r.width + 2 * m, r.height + 2 * m) & cv::Rect(0, 0, image.width, image.height);
}

cv::Vec4i prior_padding(cv::Size image, const Box& box, const cv::Rect& crop, double clipped_fraction) {
  if (clipped_fraction <= 0) return {};
  const cv::Rect r = box.pixel_rect() & cv::Rect(0, 0, image.width, image.height);
  const int want = static_cast<int>(std::lround(clipped_fraction * std::max(r.width, r.height)));
  // Margin the crop has beyond the box on each side, and whether the image cut that side.
  const int have[4] = {r.x - crop.x, r.y - crop.y, crop.br().x - r.br().x, crop.br().y - r.br().y};
  const bool cut[4] = {crop.x == 0, crop.y == 0, crop.br().x == image.width, crop.br().y == image.height};
  const int limit[4] = {crop.width - 1, crop.height - 1, crop.width - 1, crop.height - 1};
  cv::Vec4i pad;
  for (int i = 0; i < 4; ++i)
    if (cut[i]) pad[i] = std::clamp(want - have[i], 0, limit[i]);
  return pad;
}

FusedMask fuse_prior(const cv::Mat& image, const Box& box, const cv::Mat& probability, const cv::Rect& crop,
                     const LearnedPriorParams& p) {
  SEMAT_CHECK(image.type() == CV_8UC3, InvalidArgument, "fuse_prior: CV_8UC3 image expected");
  check_box_in_image(box, image.cols, image.rows);
  const cv::Rect full(0, 0, image.cols, image.rows);
  SEMAT_CHECK(crop.area() > 0 && (crop & full) == crop, InvalidArgument,
              "fuse_prior: crop " << crop << " is not inside the " << image.cols << "x" << image.rows << " image");
  SEMAT_CHECK(probability.channels() == 1 && probability.size() == crop.size(), InvalidArgument,
              "fuse_prior: probability map must be one channel of the crop's size " << crop.width << "x"
                                                                                    << crop.height << ", got "
                                                                                    << probability.cols << "x"
                                                                                    << probability.rows);
  FusedMask f;
  f.probability = cv::Mat::zeros(image.size(), CV_32F);
  {
    cv::Mat pc;
    probability.convertTo(pc, CV_32F);
    cv::patchNaNs(pc, 0.0);
    pc = cv::min(cv::max(pc, 0.0), 1.0);
    pc.copyTo(f.probability(crop));
  }
  const cv::Mat& P = f.probability;
  const cv::Rect r = box.pixel_rect() & full;
  cv::Mat inside = cv::Mat::zeros(image.size(), CV_8U);
  inside(r).setTo(255);

  // 1. The network's mask, its unsure pixels settled by a colour model seeded by the confident
  //    ones (outside the box is background: the box is drawn around the subject).
  cv::Mat mask = (P >= 0.5) & inside;
  const cv::Mat unsure = (P > p.lo) & (P < p.hi) & inside;
  if (cv::countNonZero(unsure) > 0) {
    cv::Mat labels(image.size(), CV_8U, cv::Scalar(cv::GC_BGD));
    labels.setTo(cv::GC_PR_BGD, unsure);
    labels.setTo(cv::GC_PR_FGD, unsure & (P >= 0.5));
    labels.setTo(cv::GC_FGD, (P >= p.hi) & inside);
    const cv::Rect roi = prior_crop(image.size(), box, 0.05);
    const cv::Mat g = grabcut_labels(image, labels, roi, p.grabcut_iterations, p.grabcut_max_side);
    if (!g.empty()) mask = g & inside;
    SEMAT_LOG_DEBUG("prior", cv::countNonZero(unsure) << " unsure px; " << cv::countNonZero(mask & unsure)
                                                      << " of them subject"
                                                      << (g.empty() ? " (GrabCut could not run)" : ""));
  }
  mask = keep_large_pieces(mask, p.min_piece_fraction);
  f.mask = mask;
  // The map's evidence above side_evidence counts for the network too (see LearnedPriorParams).
  f.sides_touched = sides_touched(mask | ((P > p.side_evidence) & inside), r, p.side_reach_fraction);
  f.source = "prior";

  // 2. The wrong-object check. When the network's mask leaves a side of the box untouched, two
  //    GrabCut masks compete with it, and the one that best fits a box drawn around one subject
  //    wins: score = how well the mask separates the crop's colours + side_bonus per box side it
  //    touches. The candidates:
  //    - GrabCut on the whole box, which does not trust the network's pixels (they may be the
  //      wrong object's), plus the network's pieces it overlaps (there the two agree: the head
  //      GrabCut found along with the sweater the network missed);
  //    - GrabCut seeded by the network's confident background (p < seed_background), which keeps
  //      GrabCut from taking in a background whose only sample outside the box is a thin strip
  //      (the sky above a tight box set by the faintest strands of fur).
  if (f.sides_touched < 4) {
    const cv::Rect region = prior_crop(image.size(), box, p.margin_fraction);
    struct Candidate {
      cv::Mat mask;
      int sides = 0;
      double score = -1;
      const char* source = "";
    };
    // `sides` < 0: counted on the mask (the network's count also takes its map's evidence).
    auto candidate = [&](cv::Mat mask, const char* source, int sides = -1) {
      Candidate c;
      c.source = source;
      if (mask.empty() || cv::countNonZero(mask) == 0) return c;
      c.mask = std::move(mask);
      c.sides = sides >= 0 ? sides : sides_touched(c.mask, r, p.side_reach_fraction);
      c.score = colour_separation(image, c.mask, region) + p.side_bonus * c.sides;
      SEMAT_LOG_DEBUG("prior", source << ": touches " << c.sides << " sides, score " << c.score);
      return c;
    };
    Candidate best = candidate(f.mask, "prior", f.sides_touched);

    GrabCutParams gp;  // the classical box GrabCut (it also copes with a box that fills the image)
    gp.iterations = p.grabcut_iterations + 2;
    gp.max_side = p.grabcut_max_side;
    gp.min_piece_fraction = p.min_piece_fraction;
    cv::Mat g;
    try {
      g = grabcut_mask(image, box, gp);
    } catch (const Error& e) {
      SEMAT_LOG_DEBUG("prior", "box GrabCut found nothing: " << e.what());
    }
    if (!g.empty()) {
      cv::Mat pieces, stats, centroids;
      const int n = cv::connectedComponentsWithStats(mask, pieces, stats, centroids, 8, CV_32S);
      for (int i = 1; i < n; ++i) {
        const cv::Mat piece = pieces == i;
        if (cv::countNonZero(piece & g) > 0) g.setTo(255, piece);
      }
    }
    cv::Mat seeded;
    {
      cv::Mat labels(image.size(), CV_8U, cv::Scalar(cv::GC_BGD));
      labels(r).setTo(cv::GC_PR_FGD);
      labels.setTo(cv::GC_PR_BGD, (P < p.seed_background) & inside);
      seeded = grabcut_labels(image, labels, prior_crop(image.size(), box, 0.05), p.grabcut_iterations + 2,
                              p.grabcut_max_side);
      if (!seeded.empty()) seeded = keep_large_pieces(seeded & inside, p.min_piece_fraction);
    }
    // A candidate that mostly agrees with the network's mask is the same subject seen twice: the
    // network's keeps its edges.
    auto agrees = [&](const cv::Mat& m) {
      const double uni = cv::countNonZero(m | f.mask);
      return uni > 0 && cv::countNonZero(m & f.mask) / uni >= p.agree_iou;
    };
    for (Candidate c : {candidate(g, "prior+grabcut"), candidate(seeded, "prior+seeded-grabcut")})
      if (c.score > best.score && !agrees(c.mask)) best = std::move(c);
    if (!best.mask.empty()) {
      f.mask = best.mask;
      f.sides_touched = best.sides;
      f.source = best.source;
    }
  }
  SEMAT_CHECK(cv::countNonZero(f.mask) > 0, DataError,
              "no subject found inside box (" << box.str() << "): draw the box tighter around the subject");
  return f;
}

cv::Mat prior_trimap(const cv::Mat& image, const cv::Mat& probability, const cv::Mat& mask, const Box& box,
                     const LearnedPriorParams& p, ChannelOrder order) {
  SEMAT_CHECK(image.type() == CV_8UC3 && probability.type() == CV_32F && mask.type() == CV_8U &&
                  probability.size() == image.size() && mask.size() == image.size(),
              InvalidArgument, "prior_trimap: CV_8UC3 image, CV_32F probability and CV_8U mask of one size expected");
  const cv::Mat m = mask != 0;
  SEMAT_CHECK(cv::countNonZero(m) > 0, DataError, "prior_trimap: the mask is empty");
  const double diag = std::hypot(box.width(), box.height());
  const double band = std::max(1.5, p.edge_band_fraction * diag);
  const double reach = std::max(band, p.edge_reach_fraction * diag);
  const double unsure_reach = std::max(band, p.unsure_reach_fraction * diag);

  // Distance of every pixel to the mask's edge, on either side.
  cv::Mat d_out, d_in;
  cv::distanceTransform(~m, d_out, cv::DIST_L2, cv::DIST_MASK_PRECISE);
  cv::distanceTransform(m, d_in, cv::DIST_L2, cv::DIST_MASK_PRECISE);
  const cv::Mat dist = d_out + d_in;  // one of the two is 0 at every pixel

  // Edges of the image (its grey gradient), grown by a pixel so a band follows a strand.
  cv::Mat grey, gx, gy, mag;
  cv::cvtColor(image, grey, order == ChannelOrder::kRGB ? cv::COLOR_RGB2GRAY : cv::COLOR_BGR2GRAY);
  grey.convertTo(grey, CV_32F, 1.0 / 255);
  cv::Sobel(grey, gx, CV_32F, 1, 0, 3, 0.25);
  cv::Sobel(grey, gy, CV_32F, 0, 1, 3, 0.25);
  cv::magnitude(gx, gy, mag);
  cv::Mat edges = mag >= p.edge_threshold;
  cv::dilate(edges, edges, cv::getStructuringElement(cv::MORPH_RECT, {3, 3}));

  const cv::Mat unsure = (probability > std::min(p.lo, p.faint)) & (probability < p.hi);
  cv::Mat unknown = (dist <= band) | ((dist <= reach) & edges) | ((dist <= unsure_reach) & unsure);
  if (p.disagree_reach_fraction > 0) {
    // Where the mask and the network part ways (GrabCut took in a white flower beside white fur,
    // or left out a strand the network saw), neither is trusted: closed-form decides.
    const cv::Mat disagree = m != (probability >= 0.5);
    unknown |= (dist <= std::max(band, p.disagree_reach_fraction * diag)) & disagree;
  }
  if (p.fill_fraction > 0) {
    const int k = std::max(1, static_cast<int>(std::lround(p.fill_fraction * diag)));
    cv::morphologyEx(unknown, unknown, cv::MORPH_CLOSE,
                     cv::getStructuringElement(cv::MORPH_ELLIPSE, {2 * k + 1, 2 * k + 1}));
  }

  cv::Mat trimap(image.size(), CV_8U, cv::Scalar(kBackground));
  trimap.setTo(kForeground, m);
  trimap.setTo(kUnknown, unknown);
  if (cv::countNonZero(trimap == kForeground) == 0) {
    // A thin subject lies entirely in the band: its innermost pixels stay foreground, so
    // closed-form has a colour to pull towards.
    double dmax = 0;
    cv::minMaxLoc(d_in, nullptr, &dmax);
    trimap.setTo(kForeground, m & (d_in >= 0.5 * dmax));
  }
  return trimap;
}

cv::Mat prior_trimap(const cv::Mat& image, const FusedMask& f, const Box& box, const LearnedPriorParams& p,
                     ChannelOrder order) {
  LearnedPriorParams tp = p;
  if (f.source != "prior") tp.edge_band_fraction = std::max(p.edge_band_fraction, p.rough_band_fraction);
  return prior_trimap(image, f.probability, f.mask, box, tp, order);
}

cv::Mat prior_hint(const cv::Mat& probability, const cv::Mat& mask) {
  SEMAT_CHECK(probability.type() == CV_32F && mask.type() == CV_8U && probability.size() == mask.size(),
              InvalidArgument, "prior_hint: CV_32F probability and CV_8U mask of one size expected");
  cv::Mat hint = probability.clone();
  const cv::Mat m = mask != 0;
  const cv::Mat agree_fg = probability >= 0.5;
  hint.setTo(1.0, m & ~agree_fg);
  hint.setTo(0.0, ~m & agree_fg);
  return hint;
}

void solve_with_hint(const cv::Mat& image, const cv::Mat& trimap, const cv::Mat& hint, double weight,
                     const MatteOptions& o, MatteResult& r) {
  ClosedFormParams solver = o.solver;
  const bool use_hint = !hint.empty() && weight > 0;
  if (use_hint) solver.prior_weight = weight;
  cv::Rect roi(0, 0, image.cols, image.rows);
  if (o.crop_margin >= 0) {
    const cv::Rect bound = cv::boundingRect(trimap);
    const int mg = o.crop_margin;
    roi = bound.area() == 0 ? cv::Rect()
                            : cv::Rect(bound.x - mg, bound.y - mg, bound.width + 2 * mg, bound.height + 2 * mg) & roi;
  }
  if (roi.area() == 0) {
    r.alpha = cv::Mat(image.size(), CV_32F, cv::Scalar(0));
  } else {
    const cv::Mat a = closed_form_alpha(image(roi), trimap(roi), solver, &r.solve,
                                        use_hint ? cv::Mat(hint(roi)) : cv::Mat());
    if (roi.size() == image.size()) {
      r.alpha = a;
    } else {
      r.alpha = cv::Mat(image.size(), CV_32F, cv::Scalar(0));
      a.copyTo(r.alpha(roi));
    }
  }
  r.foreground = estimate_foreground(image, r.alpha, o.foreground).foreground;
}

void solve_prior_band(const cv::Mat& image, const cv::Mat& trimap, const cv::Mat& hint, const Box& box,
                      const LearnedPriorParams& p, const MatteOptions& o, MatteResult& r) {
  r.trimap = trimap;
  solve_with_hint(image, r.trimap, hint, p.prior_weight, o, r);
  const double diag = std::hypot(box.width(), box.height());
  const int k = std::max(1, static_cast<int>(std::lround(p.regrow_fraction * diag)));
  const cv::Mat near = cv::getStructuringElement(cv::MORPH_RECT, {3, 3});
  for (int pass = 0; pass < p.regrow_passes; ++pass) {
    const cv::Mat unknown = r.trimap == kUnknown;
    cv::Mat next_bg, next_fg;
    cv::dilate(r.trimap == kBackground, next_bg, near);
    cv::dilate(r.trimap == kForeground, next_fg, near);
    const cv::Mat cut =
        unknown & ((next_bg & (r.alpha > p.regrow_gap)) | (next_fg & (r.alpha < 1.0 - p.regrow_gap)));
    const int n = cv::countNonZero(cut);
    if (n == 0) break;
    cv::Mat grow;
    cv::dilate(cut, grow, cv::getStructuringElement(cv::MORPH_ELLIPSE, {2 * k + 1, 2 * k + 1}));
    cv::Mat t = r.trimap.clone();
    t.setTo(kUnknown, grow);
    // Foreground must remain for closed-form to have a colour to pull towards.
    if (cv::countNonZero(t == kForeground) == 0) break;
    SEMAT_LOG_DEBUG("prior", "band pass " << pass + 1 << ": " << n << " edge px cut a transition; "
                                          << cv::countNonZero(t == kUnknown) - cv::countNonZero(unknown)
                                          << " px more unknown");
    r.trimap = t;
    solve_with_hint(image, r.trimap, hint, p.prior_weight, o, r);
  }
}

MatteResult matte_from_prior(const cv::Mat& image, const Box& box, const cv::Mat& probability, const cv::Rect& crop,
                             const MatteOptions& o, const LearnedPriorParams& p, ChannelOrder order) {
  Timer t;
  const FusedMask f = fuse_prior(image, box, probability, crop, p);
  MatteResult r;
  r.box = box;
  r.mask = f.mask;
  solve_prior_band(image, prior_trimap(image, f, box, p, order), prior_hint(f.probability, f.mask), box, p, o, r);
  r.seconds = t.seconds();
  SEMAT_LOG_DEBUG("prior", "learned box pipeline (" << f.source << ", " << f.sides_touched
                                                    << " sides): " << r.seconds << " s");
  return r;
}

}  // namespace semat::matting
