// The nuvola guest SDK, imported as "nuvola" by functions built with `nuvola build`.
export { input, inputString, output, outputString, log, sleep, deadline } from "./io";
export { ABI_VERSION } from "./abi";
export { state } from "./state";
export { chain } from "./chain";
export { comm } from "./comm";
export { frames } from "./frames";
export { kernels } from "./kernels";
export { clock, random } from "./sys";
export { region, Region } from "./region";
