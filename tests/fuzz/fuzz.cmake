# libFuzzer targets, one per reader of outside bytes (tests/fuzz/fuzz_inputs.h), in a build folder of their own:
#   cmake -S . -B build-fuzz -G Ninja -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ -DGANCU_FUZZ=ON -DGANCU_CUDA=OFF
#   cmake --build build-fuzz --target fuzz_all
# Such a folder builds nothing else. The readers are compiled here from their sources, with coverage instrumentation,
# AddressSanitizer and UBSan (any UB report is fatal), rather than linking the gancu libraries, which hold far more.
if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
  message(FATAL_ERROR "GANCU_FUZZ needs clang (libFuzzer): configure with -DCMAKE_CXX_COMPILER=clang++")
endif()
if(GANCU_CUDA)
  message(FATAL_ERROR "GANCU_FUZZ builds host readers only: configure with -DGANCU_CUDA=OFF")
endif()

set(GANCU_FUZZ_TARGETS idx_images idx_labels cifar10 cifar10_meta png jpeg npy safetensors safetensors_metadata kernel_choices
    recipe_config fid_stats)
set(GANCU_FUZZ_SANITIZERS -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer -g)

add_library(gancu_fuzz_readers STATIC
  core/files.cpp core/memory.cpp core/npy.cpp core/tensor.cpp kernels/cpu/resize.cpp engine/kernel_choice.cpp
  tools/io/dataset.cpp tools/io/png.cpp tools/io/jpeg.cpp tools/io/photos.cpp tools/io/safetensors.cpp recipes/options.cpp tools/eval/fid.cpp
  tools/eval/images.cpp tests/fuzz/fuzz_inputs.cpp)
gancu_target_defaults(gancu_fuzz_readers)
target_compile_options(gancu_fuzz_readers PRIVATE -fsanitize=fuzzer-no-link ${GANCU_FUZZ_SANITIZERS})
target_compile_definitions(gancu_fuzz_readers PRIVATE GANCU_SR_PHOTOS_MANIFEST="${PROJECT_SOURCE_DIR}/tools/sr_photos.txt")
target_link_libraries(gancu_fuzz_readers PUBLIC nlohmann_json::nlohmann_json PNG::PNG JPEG::JPEG ZLIB::ZLIB Eigen3::Eigen)

add_custom_target(fuzz_all)
foreach(name IN LISTS GANCU_FUZZ_TARGETS)
  add_executable(fuzz_${name} tests/fuzz/fuzz_target.cpp)
  gancu_target_defaults(fuzz_${name})
  target_compile_definitions(fuzz_${name} PRIVATE GANCU_FUZZ_TARGET="${name}")
  target_compile_options(fuzz_${name} PRIVATE -fsanitize=fuzzer ${GANCU_FUZZ_SANITIZERS})
  target_link_options(fuzz_${name} PRIVATE -fsanitize=fuzzer,address,undefined)
  target_link_libraries(fuzz_${name} PRIVATE gancu_fuzz_readers)
  add_dependencies(fuzz_all fuzz_${name})
endforeach()
