export * from "./inputs";
export * from "./paths";
export * from "./redisConf";
export * from "./redisConfig";
export * from "./sentinelConf";
export * from "./units";
export * from "./userData";
export * from "./liveSettings";
