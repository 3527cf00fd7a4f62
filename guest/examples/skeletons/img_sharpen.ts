import { readImage, convolve, finish, reserve } from "./_image";
// Sharpen: a 3×3 convolution that adds the Laplacian.
const K: StaticArray<i32> = [0, -1, 0, -1, 5, -1, 0, -1, 0];
export function init(): void {
  reserve();
}
export function main(): i32 {
  const img = readImage();
  if (img == null) return 1;
  return finish(convolve(img, K));
}
