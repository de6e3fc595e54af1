/* Internal: the named ConvNeXt sizes (V1 and V2), as timm names them. */
#ifndef CNX_WEIGHTS_CONVNEXT_ARCHITECTURES_H
#define CNX_WEIGHTS_CONVNEXT_ARCHITECTURES_H

#include <stddef.h>

#include "cnx.h"

/* The named architectures (convnext_atto ... convnext_xxlarge, then
 * convnextv2_atto ... convnextv2_huge), by index from 0: entry index's name,
 * depths, widths and whether it has GRN (V2), and 1; 0 past the last. */
int cnx_convnext_architecture(size_t index, const char **name, int depths[CNX_MAX_STAGES],
                              int widths[CNX_MAX_STAGES], int *has_grn);

/* The name of a model of these shapes ("convnext_tiny", "convnextv2_atto"),
 * or "convnext" / "convnextv2" for shapes no named size has. */
const char *cnx_convnext_architecture_name(int num_stages, const int depths[CNX_MAX_STAGES],
                                           const int widths[CNX_MAX_STAGES], int has_grn);

#endif
