/* The named ConvNeXt sizes: timm's V1 atto .. xxlarge (torchvision's tiny ..
 * large among them) and V2 atto .. huge. Widths double at every stage. */
#include "convnext_architectures.h"

typedef struct known_architecture {
    const char *name;
    int depths[CNX_MAX_STAGES];
    int first_width;
    int has_grn; /* ConvNeXt V2 */
} known_architecture;

static const known_architecture known_architectures[] = {
    {"convnext_atto", {2, 2, 6, 2}, 40, 0},      {"convnext_femto", {2, 2, 6, 2}, 48, 0},
    {"convnext_pico", {2, 2, 6, 2}, 64, 0},      {"convnext_nano", {2, 2, 8, 2}, 80, 0},
    {"convnext_tiny", {3, 3, 9, 3}, 96, 0},      {"convnext_small", {3, 3, 27, 3}, 96, 0},
    {"convnext_base", {3, 3, 27, 3}, 128, 0},    {"convnext_large", {3, 3, 27, 3}, 192, 0},
    {"convnext_xlarge", {3, 3, 27, 3}, 256, 0},  {"convnext_xxlarge", {3, 4, 30, 3}, 384, 0},
    {"convnextv2_atto", {2, 2, 6, 2}, 40, 1},    {"convnextv2_femto", {2, 2, 6, 2}, 48, 1},
    {"convnextv2_pico", {2, 2, 6, 2}, 64, 1},    {"convnextv2_nano", {2, 2, 8, 2}, 80, 1},
    {"convnextv2_tiny", {3, 3, 9, 3}, 96, 1},    {"convnextv2_small", {3, 3, 27, 3}, 96, 1},
    {"convnextv2_base", {3, 3, 27, 3}, 128, 1},  {"convnextv2_large", {3, 3, 27, 3}, 192, 1},
    {"convnextv2_huge", {3, 3, 27, 3}, 352, 1},
};

#define NUM_ARCHITECTURES (sizeof known_architectures / sizeof known_architectures[0])

int cnx_convnext_architecture(size_t index, const char **name, int depths[CNX_MAX_STAGES],
                              int widths[CNX_MAX_STAGES], int *has_grn) {
    if (index >= NUM_ARCHITECTURES) return 0;
    const known_architecture *k = &known_architectures[index];
    *name = k->name;
    *has_grn = k->has_grn;
    for (int s = 0; s < CNX_MAX_STAGES; s++) {
        depths[s] = k->depths[s];
        widths[s] = k->first_width << s;
    }
    return 1;
}

const char *cnx_convnext_architecture_name(int num_stages, const int depths[CNX_MAX_STAGES],
                                           const int widths[CNX_MAX_STAGES], int has_grn) {
    const char *unnamed = has_grn ? "convnextv2" : "convnext";
    if (num_stages != CNX_MAX_STAGES) return unnamed;
    for (size_t a = 0; a < NUM_ARCHITECTURES; a++) {
        const known_architecture *k = &known_architectures[a];
        int same = k->has_grn == has_grn;
        for (int s = 0; s < CNX_MAX_STAGES; s++)
            same = same && depths[s] == k->depths[s] && widths[s] == k->first_width << s;
        if (same) return k->name;
    }
    return unnamed;
}
