/* torchvision's ConvNeXt_*_Weights.IMAGENET1K_V1.transforms() values, used
 * when a weights file carries no preprocessing metadata. */
#include "cnx.h"

cnx_preprocess cnx_default_preprocess(void) {
    cnx_preprocess preprocess = {
        .resize = 236,
        .crop = 224,
        .mean = {0.485f, 0.456f, 0.406f},
        .std = {0.229f, 0.224f, 0.225f},
        .normalize = 1,
    };
    return preprocess;
}
