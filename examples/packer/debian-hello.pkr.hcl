# An image built by Packer's amazon-ebs builder (Debian's packer 1.6.6) against kiln, unchanged
# but for the endpoint: start from kiln's debian-12 image, install Debian's `hello` package and
# write a stamp file, make the image, copy it to a second region and share it with a second account.
#
#   apt-get download hello            # the .deb the instance installs (the instance has no mirror)
#   packer build -var endpoint=http://127.0.0.1:8779 -var deb=$(ls hello_*.deb) \
#       -var share_with=222233334444 examples/packer/debian-hello.pkr.hcl
#
# Keys: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY of a kiln account (or the variables below).

variable "endpoint" {
  type        = string
  description = "kiln's API endpoint, e.g. http://127.0.0.1:8779"
}

variable "region" {
  type    = string
  default = "us-east-1"
}

variable "copy_region" {
  type    = string
  default = "eu-west-1"
}

variable "share_with" {
  type        = string
  description = "the 12-digit id of the account the images are shared with"
}

variable "deb" {
  type        = string
  description = "path of the hello_*.deb to install (from `apt-get download hello`)"
}

variable "ami_name" {
  type    = string
  default = "debian-12-hello"
}

variable "access_key" {
  type    = string
  default = ""
}

variable "secret_key" {
  type    = string
  default = ""
}

variable "stamp_exit" {
  type        = number
  default     = 0
  description = "the provisioner's exit status after writing the stamp (1 makes the build fail)"
}

source "amazon-ebs" "kiln" {
  # Where EC2 is: kiln. Packer talks to no other AWS service in this build.
  custom_endpoint_ec2 = var.endpoint
  region              = var.region
  access_key          = var.access_key
  secret_key          = var.secret_key
  # kiln's regions need not be in the SDK's list of AWS regions (a topology may name its own), and
  # its keys mean nothing to AWS's STS: validate neither. (With keys given as here, packer 1.6.6
  # calls no STS in any case; the options make that explicit.)
  skip_region_validation     = true
  skip_credential_validation = true

  # The newest kiln-debian-12 published by kiln (owner alias `amazon`, as EC2's public images).
  source_ami_filter {
    owners      = ["amazon"]
    most_recent = true
    filters = {
      name                = "kiln-debian-12"
      root-device-type    = "ebs"
      virtualization-type = "hvm"
    }
  }
  instance_type = "t3.micro"

  # Packer makes a temporary key pair and security group (port 22 open) and SSHes to the
  # instance's public address (kiln routes 198.18.0.0/15 from the host to the VPCs).
  ssh_username = "admin"
  ssh_timeout  = "5m"

  ami_name    = var.ami_name
  ami_regions = [var.copy_region]
  ami_users   = [var.share_with]
}

build {
  sources = ["source.amazon-ebs.kiln"]

  provisioner "file" {
    source      = var.deb
    destination = "/tmp/hello.deb"
  }

  provisioner "shell" {
    inline = [
      "sudo apt-get install -y /tmp/hello.deb",
      "echo 'built by packer on kiln' | sudo tee /etc/kiln-packer-stamp",
      "hello",
      "exit ${var.stamp_exit}",
    ]
  }
}
