/* cnx: ConvNeXt inference from PyTorch weights, on the CPU or an NVIDIA GPU.
 *
 * The one header embedders include. It compiles as C99 and later, and as C++.
 * Every function returns a cnx_status; on failure, cnx_last_error() gives a
 * one-line message naming the file and the cause. The library never exits,
 * aborts or prints.
 *
 * Typical use:
 *
 *   cnx_options opt = cnx_default_options();
 *   cnx_engine *engine;
 *   if (cnx_engine_create("convnext_tiny.safetensors", &opt, &engine) != CNX_OK)
 *       fprintf(stderr, "%s\n", cnx_last_error());
 *   cnx_engine_classify(engine, input, n, 224, 224, 5, top);
 *   cnx_engine_destroy(engine);
 */
#ifndef CNX_H
#define CNX_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define CNX_API __attribute__((visibility("default")))
#else
#define CNX_API
#endif

#define CNX_VERSION_MAJOR 0
#define CNX_VERSION_MINOR 4
#define CNX_VERSION_PATCH 0

/* ------------------------------------------------------------------ status */

typedef enum cnx_status {
    CNX_OK = 0,
    CNX_ERROR_INVALID_ARGUMENT, /* a bad value from the caller */
    CNX_ERROR_IO,               /* missing, unreadable, empty, or a directory */
    CNX_ERROR_WEIGHTS,          /* a malformed or inconsistent weights file */
    CNX_ERROR_IMAGE,            /* a corrupt or truncated image */
    CNX_ERROR_UNSUPPORTED,      /* well-formed input that cnx does not handle */
    CNX_ERROR_TOO_LARGE,        /* over a size limit (pixels, header bytes) */
    CNX_ERROR_OUT_OF_MEMORY,
    CNX_ERROR_NO_DEVICE,        /* CUDA was asked for and none is usable */
    CNX_ERROR_DEVICE,           /* a CUDA, cuDNN or cuBLAS call failed */
    CNX_ERROR_INTERNAL
} cnx_status;

/* A short name for a status, e.g. "corrupt image". Never NULL. */
CNX_API const char *cnx_status_string(cnx_status status);

/* The message of the last failed call on this thread, e.g.
 * "cat.png: PNG truncated after 4096 bytes". Empty when none failed. */
CNX_API const char *cnx_last_error(void);

/* ----------------------------------------------------------------- engine */

typedef enum cnx_device {
    CNX_DEVICE_AUTO = 0, /* the GPU when one is usable, else the CPU */
    CNX_DEVICE_CPU,
    CNX_DEVICE_CUDA
} cnx_device;

typedef enum cnx_precision {
    CNX_PRECISION_FP32 = 0, /* fp32 math, TF32 off */
    CNX_PRECISION_TF32,
    CNX_PRECISION_FP16,
    CNX_PRECISION_BF16
} cnx_precision;

typedef struct cnx_options {
    cnx_device device;
    cnx_precision precision; /* the CPU backend always computes in fp32 */
    int max_batch;   /* images per forward planned for; larger calls are split */
    int input_size;  /* planned input height and width; 0: the crop in the file */
    int num_threads; /* CPU threads; 0: every core */
    int cuda_device; /* CUDA device ordinal */
    void *cuda_stream; /* a cudaStream_t of the caller's for the engine's GPU
                        * work, or NULL: the engine makes its own. The
                        * engine never waits on this stream once a call
                        * has returned: it may be destroyed before the
                        * engine. Ignored on the CPU. */
    int use_test_size; /* timm checkpoint folders: preprocess with the config's
                        * test_input_size and test_crop_pct, as timm's
                        * resolve_data_config(use_test_size=True) */
} cnx_options;

CNX_API cnx_options cnx_default_options(void);

/* "fp32", "tf32", "fp16", "bf16" ("unknown" for other values); the parser
 * returns 0 and sets *out, or -1 for an unknown name. */
CNX_API const char *cnx_precision_name(cnx_precision precision);
CNX_API int cnx_precision_parse(const char *name, cnx_precision *out);

/* Pillow's resampling filters (PIL.Image.Resampling), by name. NEAREST is
 * not a separable filter in Pillow (it is an affine transform) and cnx
 * refuses it. */
typedef enum cnx_interpolation {
    CNX_INTERPOLATION_BILINEAR = 0, /* torchvision's ConvNeXt weights */
    CNX_INTERPOLATION_BICUBIC,      /* timm and Hugging Face checkpoints */
    CNX_INTERPOLATION_BOX,
    CNX_INTERPOLATION_HAMMING,
    CNX_INTERPOLATION_LANCZOS,
    CNX_INTERPOLATION_NEAREST,      /* named only to refuse it clearly */
    CNX_INTERPOLATION_COUNT
} cnx_interpolation;

/* How `resize` sizes the image before the crop (timm's crop_mode). */
typedef enum cnx_crop_mode {
    CNX_CROP_MODE_CENTER = 0, /* the short side becomes resize, the long side
                               * int(resize * long / short): torchvision's Resize(int) */
    CNX_CROP_MODE_SQUASH,     /* resize x resize, the aspect ratio not kept */
    CNX_CROP_MODE_BORDER,     /* the long side becomes resize, both sides rounded
                               * half to even (timm's ResizeKeepRatio(longest=1));
                               * padding takes the mean color, round(255 * mean) */
    CNX_CROP_MODE_COUNT
} cnx_crop_mode;

/* Where a center crop starts when (size - crop) is odd. */
typedef enum cnx_crop_offset {
    CNX_CROP_OFFSET_ROUND = 0, /* round((size - crop) / 2), half to even: torchvision, timm */
    CNX_CROP_OFFSET_FLOOR,     /* (size - crop) // 2: Hugging Face's center_crop */
    CNX_CROP_OFFSET_COUNT
} cnx_crop_offset;

/* How an image becomes the model's input. The defaults are torchvision's
 * weights.transforms(): Resize(resize, bilinear) -> CenterCrop(crop) ->
 * scale by 1/255 -> Normalize(mean, std). The other fields reproduce timm's
 * transforms_imagenet_eval and Hugging Face's ConvNextImageProcessor
 * exactly; zero in each of them means torchvision's behaviour. */
typedef struct cnx_preprocess {
    int resize;    /* the side the crop mode resizes to (see cnx_crop_mode) */
    int crop;      /* the side of the square center crop */
    float mean[3]; /* per channel, RGB, in [0,1] units */
    float std[3];
    int normalize; /* 0: stop after the scaling */
    cnx_interpolation interpolation;
    cnx_crop_mode crop_mode;
    cnx_crop_offset crop_offset;
    double rescale_factor; /* 0: x = u / 255 in fp32 (torchvision, timm);
                            * > 0: x = (float)(u * rescale_factor) in double
                            * (Hugging Face's rescale) */
} cnx_preprocess;

/* Names as the CLI, the weights metadata and the libraries' configs spell
 * them: "bilinear", "bicubic", "box", "hamming", "lanczos", "nearest";
 * "center", "squash", "border"; "round", "floor". The parsers return 0 and
 * set *out, or -1 for an unknown name. */
CNX_API const char *cnx_interpolation_name(cnx_interpolation interpolation);
CNX_API int cnx_interpolation_parse(const char *name, cnx_interpolation *out);
CNX_API const char *cnx_crop_mode_name(cnx_crop_mode mode);
CNX_API int cnx_crop_mode_parse(const char *name, cnx_crop_mode *out);
CNX_API const char *cnx_crop_offset_name(cnx_crop_offset offset);
CNX_API int cnx_crop_offset_parse(const char *name, cnx_crop_offset *out);

/* The resize side for a crop and a crop fraction, as timm
 * (floor(crop / crop_pct)) and Hugging Face (int(shortest_edge / crop_pct))
 * both compute it; 0 when crop_pct is not in (0, 1] or the side would
 * exceed CNX_MAX_SIDE. */
CNX_API int cnx_resize_for_crop_pct(int crop, double crop_pct);

/* The largest model input side, resize or crop cnx accepts: large enough for
 * any real use, small enough that no size computation can overflow. */
#define CNX_MAX_SIDE 16384

/* torchvision's ImageNet defaults for ConvNeXt: 236, 224, ImageNet mean/std. */
CNX_API cnx_preprocess cnx_default_preprocess(void);

#define CNX_MAX_STAGES 4

/* Where a preprocessing value came from. Precedence, highest first: the
 * caller's own (flags), the safetensors file's metadata, the checkpoint
 * folder's config file, torchvision's defaults. */
typedef enum cnx_value_source {
    CNX_SOURCE_DEFAULT = 0,         /* torchvision's ImageNet values */
    CNX_SOURCE_METADATA,            /* the safetensors file's __metadata__ */
    CNX_SOURCE_TIMM_CONFIG,         /* timm's config.json, pretrained_cfg */
    CNX_SOURCE_TRANSFORMERS_CONFIG  /* Hugging Face's preprocessor_config.json */
} cnx_value_source;

/* "default", "metadata", "config.json", "preprocessor_config.json". */
CNX_API const char *cnx_value_source_name(cnx_value_source source);

typedef struct cnx_preprocess_sources {
    cnx_value_source resize, crop, mean, std, normalize;
    cnx_value_source interpolation, crop_mode, crop_offset, rescale_factor;
} cnx_preprocess_sources;

typedef struct cnx_model_info {
    char architecture[64]; /* "convnext_tiny", or "convnext" for unnamed shapes */
    int num_stages;
    int depths[CNX_MAX_STAGES];
    int widths[CNX_MAX_STAGES];
    int num_classes;
    int64_t num_parameters;
    char weights_dtype[8];   /* as stored in the file: "F32", "F16", "BF16" */
    char naming[16];         /* "torchvision", "timm" or "transformers" */
    int has_grn;             /* ConvNeXt V2 */
    int has_class_names;     /* the checkpoint names its classes (cnx_engine_class_label) */
    char source[256];        /* where the weights came from, per the metadata */
    int has_preprocess_metadata; /* 0: neither the file nor a config file said
                                  * anything; torchvision's defaults apply */
    cnx_preprocess preprocess;   /* what the file and its folder carry */
    cnx_preprocess_sources preprocess_sources;
    cnx_device device;           /* what the engine runs on: CPU or CUDA */
    char device_name[128];
} cnx_model_info;

typedef struct cnx_engine cnx_engine;

/* Loads and validates a safetensors file, or a checkpoint folder as timm
 * (save_for_hf) and Hugging Face (save_pretrained) write them:
 * model.safetensors beside config.json (timm's pretrained_cfg, or
 * transformers' model config with id2label) and preprocessor_config.json
 * (transformers). Those files give the preprocessing, the class names and
 * transformers' final LayerNorm eps; they must agree with the tensors.
 * Then prepares the backend. options may be NULL for the defaults.
 * *engine is NULL on failure. */
CNX_API cnx_status cnx_engine_create(const char *weights_path, const cnx_options *options,
                             cnx_engine **engine);

/* An engine with seeded random weights of a named architecture
 * ("convnext_tiny", "convnext_small", "convnext_base", ...; see cnx info),
 * 1000 classes and torchvision's ImageNet preprocessing: for benchmarks and
 * tests that must not download anything. Its predictions mean nothing. */
CNX_API cnx_status cnx_engine_create_random(const char *architecture, uint64_t seed,
                                    const cnx_options *options, cnx_engine **engine);

CNX_API cnx_status cnx_engine_info(const cnx_engine *engine, cnx_model_info *info);

/* Why an engine created with CNX_DEVICE_AUTO runs on the CPU although the
 * machine has a CUDA device, e.g. "cuBLASLt: libcublasLt.so.13: cannot open
 * shared object file: No such file or directory", a device the build has no
 * kernels for, or a model too large for its memory: one line, valid as long
 * as the engine. NULL when the engine runs where it was asked to: the GPU,
 * the CPU by choice, or AUTO where no CUDA device is usable at all (or cnx
 * was built without CUDA), which is no news. */
CNX_API const char *cnx_engine_fallback_reason(const cnx_engine *engine);

/* Runs the model. input: n images as contiguous float32 [n, 3, height, width]
 * (already preprocessed). logits: float32 [n, num_classes]. */
CNX_API cnx_status cnx_engine_forward(cnx_engine *engine, const float *input, int n,
                              int height, int width, float *logits);

typedef struct cnx_prediction {
    int class_index;
    float probability; /* softmax over all classes */
    float logit;
} cnx_prediction;

/* Softmax over one row of logits, then the k most probable classes, most
 * probable first; ties go to the lower class index. */
CNX_API cnx_status cnx_top_k(const float *logits, int num_classes, int k,
                     cnx_prediction *top);

/* forward + top_k: top receives n*k predictions, k per image. */
CNX_API cnx_status cnx_engine_classify(cnx_engine *engine, const float *input, int n,
                               int height, int width, int k,
                               cnx_prediction *top);

CNX_API void cnx_engine_destroy(cnx_engine *engine);

/* -------------------------------------------------- CUDA device pointers
 *
 * For programs that keep their data on the GPU (for example after
 * preprocessing it there). These need an engine running on CUDA; on a CPU
 * engine they return CNX_ERROR_UNSUPPORTED. Unlike the host entry points they
 * do not scan the input for NaN or infinity: non-finite input gives
 * non-finite logits.
 *
 * Ordering. On the engine's own stream, the work of each call follows what
 * the calling program queued on the legacy default stream (stream 0: kernels,
 * cudaMemcpy, including a cudaMemcpy from pageable memory that returned
 * before its copy ran) before the call. Work on other streams, or on a
 * per-thread default stream (nvcc --default-stream per-thread), is not
 * ordered: pass that stream in cnx_options.cuda_stream or
 * cnx_engine_set_cuda_stream, and the engine's work follows the work queued
 * there before each call. The legacy-stream order is an event recorded on
 * stream 0 at each call: in a program where another thread captures a
 * blocking stream in cudaStreamCaptureModeGlobal, pass the engine a stream
 * of its own instead.
 *
 * Graph capture. cnx_engine_forward_device on a caller's stream may be
 * captured into the caller's CUDA graph (cudaStreamBeginCapture on that
 * stream, any mode): the engine's kernels become nodes of that graph. Warm
 * the engine up with one uncaptured call of the same batch size first (it
 * loads the kernels and plans the GEMMs). The graph uses the engine's
 * buffers: launch it only while the engine lives, not concurrently with
 * other calls on the engine, and let its launches finish before destroying
 * the engine (which waits only for the engine's own work). The other entry
 * points, and forward from or to host memory, wait for their results, which
 * a capture forbids: they return CNX_ERROR_UNSUPPORTED during one, before
 * queuing anything, so the caller's capture goes on. */

/* Queues the engine's later GPU work on `cuda_stream` (a cudaStream_t), after
 * the engine's work already queued on the previous one has finished (the
 * new stream waits for it on the GPU; the call does not block, and the
 * previous stream may already be destroyed); NULL goes back to the engine's
 * own stream. A stream that is being captured is refused
 * (CNX_ERROR_INVALID_ARGUMENT): set it before the capture begins. On a CPU
 * engine NULL is accepted and anything else is CNX_ERROR_UNSUPPORTED. */
CNX_API cnx_status cnx_engine_set_cuda_stream(cnx_engine *engine, void *cuda_stream);

/* forward on device memory: input float32 [n, 3, height, width] and logits
 * float32 [n, num_classes] are device pointers. On a caller's stream the call
 * returns once the work is queued: synchronize that stream before reading the
 * logits. On the engine's own stream it returns when they are written. */
CNX_API cnx_status cnx_engine_forward_device(cnx_engine *engine, const float *input, int n,
                                     int height, int width, float *logits);

/* classify on device memory: input is a device pointer as above; softmax and
 * top-k run on the GPU, and top (host memory) receives n*k predictions
 * before the call returns. */
CNX_API cnx_status cnx_engine_classify_device(cnx_engine *engine, const float *input, int n,
                                      int height, int width, int k,
                                      cnx_prediction *top);

/* The name of a class: the checkpoint's own (transformers' id2label, timm's
 * label_names), else the built-in ImageNet-1k name for a 1000-class model,
 * else NULL. */
CNX_API const char *cnx_engine_class_label(const cnx_engine *engine, int class_index);

/* The built-in ImageNet-1k class names; NULL outside 0..999. */
CNX_API const char *cnx_imagenet_label(int class_index);

/* ----------------------------------------------------------------- images */

/* Decoded pixels: RGB8, interleaved, rows top to bottom, no padding. */
typedef struct cnx_image {
    int width;
    int height;
    uint8_t *rgb;
} cnx_image;

/* Images over this many pixels are refused (as Pillow's decompression-bomb
 * error does at twice its MAX_IMAGE_PIXELS). */
#define CNX_DEFAULT_MAX_PIXELS ((int64_t)178956970)

/* Decodes PNG or JPEG (found by magic bytes) to RGB8 with the semantics of
 * Pillow's Image.convert("RGB"). max_pixels <= 0 means the default. */
CNX_API cnx_status cnx_image_decode_file(const char *path, int64_t max_pixels,
                                 cnx_image *image);
CNX_API cnx_status cnx_image_decode_memory(const void *data, size_t size,
                                   int64_t max_pixels, cnx_image *image);
CNX_API void cnx_image_free(cnx_image *image);

/* Pillow-exact Resize(resize, bilinear) + CenterCrop(crop): the uint8 pixels
 * the model would see, planar [3, crop, crop]. */
CNX_API cnx_status cnx_preprocess_pixels(const cnx_image *image,
                                 const cnx_preprocess *params, uint8_t *out);

/* The model's input for one image: float32 [3, crop, crop]. */
CNX_API cnx_status cnx_preprocess_image(const cnx_image *image,
                                const cnx_preprocess *params, float *out);

/* Per-channel statistics of images, for Normalize's mean and std: exact
 * running sums over pixels, per channel (RGB), of u and u^2 on the 0..255
 * scale. Zero-initialize, add images, then ask for the result. Every pixel
 * counts once, so larger images weigh more. */
typedef struct cnx_pixel_stats {
    uint64_t count; /* pixels per channel */
    uint64_t sum[3];
    uint64_t sum_sq[3];
} cnx_pixel_stats;

/* The most pixels per channel the sums take, so that sum_sq (up to 255^2
 * per pixel) cannot overflow: 2.8e14, some 34 million 4K images. */
#define CNX_PIXEL_STATS_MAX_COUNT (UINT64_MAX / 65025u)

/* Adds one image's pixels after the geometric part of params:
 * Resize(params->resize) as its crop mode and filter say, then
 * CenterCrop(params->crop) with its crop offset, the padding counting as
 * pixels (as in torch). resize 0: no resize; crop 0: no crop; params NULL:
 * the image as decoded. Normalization fields are ignored. A resize without a
 * crop keeps the whole resized image, so its sides are limited to
 * CNX_MAX_SIDE (CNX_ERROR_TOO_LARGE). Beyond CNX_PIXEL_STATS_MAX_COUNT the
 * image is refused (CNX_ERROR_TOO_LARGE) rather than the sums wrapped. On
 * failure stats is unchanged. */
CNX_API cnx_status cnx_pixel_stats_add(cnx_pixel_stats *stats, const cnx_image *image,
                                       const cnx_preprocess *params);

/* mean and sample std (divisor count - 1, torch.std's default) per channel
 * on the [0,1] scale (u / 255), rounded once from the exact sums; std is NaN
 * for a single pixel. With no pixels (count 0): CNX_ERROR_INVALID_ARGUMENT,
 * and mean and std are NaN. */
CNX_API cnx_status cnx_pixel_stats_result(const cnx_pixel_stats *stats, double mean[3],
                                          double std[3]);

/* ------------------------------------------------------ batches of images
 *
 * Classification from decoded pixels rather than model inputs: each image is
 * preprocessed Pillow-exactly (cnx_preprocess_image) and then run through
 * the model. On a CUDA engine only the RGB8 pixels go to the GPU, where one
 * kernel resizes, crops and normalizes the whole batch; only the results
 * come back. On the CPU the same values are computed on the host.
 *
 * Outputs: top receives k predictions per image (or pass NULL), logits
 * num_classes floats per image (or pass NULL); at least one of them. A
 * failed image gets class_index -1 in its top rows and NaN logits, and its
 * status in image_status (n entries, or NULL); the others are unaffected.
 * These calls return CNX_OK when every image was classified; otherwise the
 * first failed image's status, with cnx_last_error() naming its index and
 * the cause. params: NULL for the preprocessing the weights file carries. */

CNX_API cnx_status cnx_engine_classify_images(cnx_engine *engine, const cnx_image *images, int n,
                                      const cnx_preprocess *params, int k,
                                      cnx_prediction *top, float *logits,
                                      cnx_status *image_status);

/* Where one image of a packed pixel buffer lies: the byte offset of its
 * pixel (0, 0), then its size. The pixels are RGB8 as in cnx_image (rows
 * top to bottom, no padding); images may sit at any byte offset. */
typedef struct cnx_image_desc {
    uint64_t offset;
    int32_t width;
    int32_t height;
} cnx_image_desc;

/* As cnx_engine_classify_images, for pixels already on the GPU (a decoder
 * of the caller's wrote them): pixels is a device pointer to pixel_bytes
 * bytes, descs a host array of n descriptors. The work is queued on the
 * engine's stream (the caller's, see cnx_options.cuda_stream), after the
 * caller's earlier work there; the call returns when top and logits (host
 * memory) are written. CNX_ERROR_UNSUPPORTED on a CPU engine. */
CNX_API cnx_status cnx_engine_classify_pixels_device(cnx_engine *engine, const uint8_t *pixels,
                                             uint64_t pixel_bytes, const cnx_image_desc *descs,
                                             int n, const cnx_preprocess *params, int k,
                                             cnx_prediction *top, float *logits,
                                             cnx_status *image_status);

/* ------------------------------------------------------ many image files
 *
 * The whole pipeline for a list of files: a pool of decode threads fills
 * batch buffers (page-locked on CUDA), and while the GPU runs one batch the
 * next is uploaded and the ones after it are decoded. Memory is bounded by a
 * few batches, whatever the number of files. Results are handed to a
 * callback on the calling thread, in input order. */

typedef struct cnx_file_result {
    size_t index;      /* in the list of paths */
    const char *path;
    cnx_status status; /* CNX_OK, or why this file failed */
    const char *error; /* "" on success, else "PATH: cause" */
    const cnx_prediction *top; /* k predictions; NULL on failure or k == 0 */
    const float *logits;       /* num_classes; NULL on failure or without want_logits */
} cnx_file_result;

/* Returns 0 to go on, anything else to stop the run. The pointers in result
 * are valid during the call only. */
typedef int (*cnx_file_result_fn)(void *user, const cnx_file_result *result);

typedef struct cnx_files_options {
    const cnx_preprocess *preprocess; /* NULL: what the weights file carries */
    int k;              /* predictions per image (0: none, logits only) */
    int want_logits;
    int batch;          /* images per batch; 0: the engine's max_batch */
    int decode_threads; /* 0: one per core */
    int64_t max_pixels; /* per image; <= 0: CNX_DEFAULT_MAX_PIXELS */
} cnx_files_options;

CNX_API cnx_files_options cnx_default_files_options(void); /* k = 5 */

/* Where a run's time went, to tell which stage bounds it. Seconds. */
typedef struct cnx_files_stats {
    size_t images, failed;
    int batches, decode_threads, batch;
    double wall;          /* the whole call */
    double decode;        /* decoding and packing, summed over the threads */
    double wait_decode;   /* the driver waiting for a batch to be decoded */
    double wait_device;   /* the driver waiting for the model's results */
    uint64_t pixel_bytes; /* RGB8 bytes decoded (and, on CUDA, uploaded) */
} cnx_files_stats;

/* Classifies every file and calls on_result once per file, in order. A bad
 * file costs only its own result. Returns CNX_OK when the run went through
 * (whether or not some files failed: see the results), or the status of
 * what stopped it: bad options, memory, a device fault (the files not yet
 * reported then get that error), or the callback (CNX_ERROR_INTERNAL with
 * "stopped by the caller"). stats may be NULL. */
CNX_API cnx_status cnx_engine_classify_files(cnx_engine *engine, const char *const *paths, size_t n,
                                     const cnx_files_options *options,
                                     cnx_file_result_fn on_result, void *user,
                                     cnx_files_stats *stats);

#ifdef __cplusplus
}
#endif

#endif /* CNX_H */
