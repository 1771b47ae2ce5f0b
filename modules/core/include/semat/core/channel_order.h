// The channel order of an 8-bit 3-channel colour image handed to the library.
#pragma once

namespace semat {

/// Image files decode to BGR (OpenCV's order, semat/io/image_io.h) and BGR is every API's
/// default. A caller that already holds RGB pixels (numpy, PIL) says kRGB, and the models build
/// their network input (RGB) straight from them instead of the caller making a BGR copy first.
/// Colour results that keep the image's channels (a matte's foreground) come out in the same order.
/// The classical stages (GrabCut, closed-form, the colour models) do not depend on the order in
/// meaning, but they compute colour statistics (3x3 covariances) in memory order, so a
/// channel-swapped image can differ from the original by rounding (an alpha level here and there).
enum class ChannelOrder { kBGR, kRGB };

inline const char* channel_order_name(ChannelOrder order) { return order == ChannelOrder::kRGB ? "RGB" : "BGR"; }

}  // namespace semat
