import { readImage, convolve, finish, reserve } from "./_image";
// Emboss: a 3×3 convolution that lights edges from the top left.
const K: StaticArray<i32> = [-2, -1, 0, -1, 1, 1, 0, 1, 2];
export function init(): void {
  reserve();
}
export function main(): i32 {
  const img = readImage();
  if (img == null) return 1;
  return finish(convolve(img, K));
}
