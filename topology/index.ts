export * from "./analysis";
export * from "./build";
export * from "./errors";
export * from "./linodeTypes";
export * from "./model";
export * from "./schema";
