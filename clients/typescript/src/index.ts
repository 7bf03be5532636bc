export * from "./client.js";
export * from "./errors.js";
export * from "./gen/codeximage/v1/image_service_pb.js";
