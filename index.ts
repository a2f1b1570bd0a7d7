import { program } from "./program";

// Pulumi calls an exported function and takes what it resolves to as the stack outputs. Async because the program
// reads its own last outputs before it declares anything (components/creationSettings.ts).
export = () => program();
