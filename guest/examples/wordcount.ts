import { inputString, outputString } from "nuvola";

// Counts the words of its input and answers with a small JSON object.
export function main(): i32 {
  const text = inputString();
  let words = 0;
  let inWord = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    const space = c == 32 || c == 10 || c == 9 || c == 13;
    if (!space && !inWord) words++;
    inWord = !space;
  }
  outputString('{"words":' + words.toString() + ',"chars":' + text.length.toString() + "}");
  return 0;
}
