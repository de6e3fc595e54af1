#include "image_views.h"

cnx_image image_view(const PixelArray &pixels, const std::string &what) {
    if (pixels.shape(2) != 3)
        throw nanobind::value_error((what + ": expected uint8 [H, W, 3] (RGB), got " +
                                     std::to_string(pixels.shape(2)) + " channels").c_str());
    return {(int)pixels.shape(1), (int)pixels.shape(0), const_cast<uint8_t *>(pixels.data())};
}
