// The JSON the console reads: protobuf's JSON mapping of image_service.proto
// with its own field names, as the shim prints it. Only the fields used here.

export interface ImageRecord {
  id: string;
  request_id: string;
  index: number;
  label: string;
  mime_type: string;
  width: number;
  height: number;
  byte_size: number;
  revised_prompt?: string;
  file_path: string;
  resolved_size: string;
  duration_ms: number;
  create_time?: string;
  prompt: string;
  requested_size: string;
  aspect: string;
  quality: string;
  output_format: string;
  key_name?: string;
  account?: string;
}

export interface Progress {
  stage: string;
  candidate_index?: number;
  phase?: string;
  detail?: string;
  queue_position?: number;
  elapsed_ms?: number;
}

export interface Summary {
  request_id: string;
  status: string;
  image_ids: string[];
  duration_ms: number;
  resolved_size: string;
}

export interface GenerateEvent {
  progress?: Progress;
  image?: ImageRecord;
  summary?: Summary;
}

export interface Capabilities {
  max_images: number;
  output_formats: string[];
  qualities: string[];
  size_options: string[];
  ratio_options: string[];
  aspect_names?: string[];
  presets?: { name: string; max_edge: number; max_pixels: number }[];
  size_constraints?: { custom_size: boolean; multiple_of: number; max_edge: number; max_ratio: string };
  references?: { max_images: number; max_bytes: number; mime_types: string[] };
  aspect_options?: { name: string; kind: string; description: string }[];
  // Offered by newer servers only; the form shows a field for each that is there.
  backgrounds?: string[];
  fits?: string[];
  auth_required: boolean;
}

export interface ImagesPage {
  images: ImageRecord[];
  next_page_token: string;
}
